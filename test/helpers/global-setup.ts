/** Printed once per run, so that a skipped part of the suite is never silent. */
import { natsServerInstalled } from "./nats";

export default function globalSetup() {
	if (!process.env.MONGO_URI) {
		console.log("\nNOTICE: MONGO_URI is not set: the MongoDB tests are skipped and the suite runs on the embedded NeDB store.");
	} else {
		console.log("\nMONGO_URI is set: the whole suite runs against MongoDB, one database per test file.");
	}
	if (!natsServerInstalled()) {
		console.log("NOTICE: nats-server is not installed: the cluster tests over NATS are skipped (apt-get install nats-server).");
	}
	console.log("");
}
