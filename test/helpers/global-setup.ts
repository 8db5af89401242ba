/**
 * Once per run: start the MongoDB stand-in unless MONGO_URI names a real MongoDB,
 * and say what runs where, so that a skipped part of the suite is never silent.
 */
import { randomBytes } from "node:crypto";
import { startMongoStandIn } from "./mongo-standin";
import { natsServerInstalled } from "./nats";

export default async function globalSetup() {
	process.env.MOLESHOP_TEST_RUN = randomBytes(4).toString("hex");
	if (process.env.MONGO_URI) {
		console.log("\nMONGO_URI is set: the whole suite runs against that MongoDB, one database per test file.");
	} else {
		const standIn = await startMongoStandIn();
		(globalThis as { mongoStandIn?: typeof standIn }).mongoStandIn = standIn;
		process.env.MONGO_STANDIN_URI = standIn.uri;
		console.log(
			"\nMONGO_URI is not set: the suite runs twice, on the embedded NeDB store [nedb] and on the MongoDB path [mongodb]\n" +
				`against the MongoDB stand-in on ${standIn.uri} (mongoose and the real driver; NeDB's engine behind MongoDB's wire protocol).\n` +
				"Set MONGO_URI=mongodb://… to run the suite against a real MongoDB.",
		);
	}
	if (!natsServerInstalled()) {
		console.log(
			"NOTICE: nats-server is not installed: the cluster tests over NATS are skipped (apt-get install nats-server).",
		);
	}
	console.log("");
}
