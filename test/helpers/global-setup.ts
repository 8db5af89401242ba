/** Printed once per run, so that a skipped MongoDB part is never silent. */
export default function globalSetup() {
	if (!process.env.MONGO_URI) {
		console.log("\nNOTICE: MONGO_URI is not set: the MongoDB tests are skipped and the suite runs on the embedded NeDB store.\n");
	} else {
		console.log("\nMONGO_URI is set: the whole suite runs against MongoDB, one database per test file.\n");
	}
}
