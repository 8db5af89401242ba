/** Drop every test database of the run, then stop the MongoDB stand-in if global-setup started one. */
import { dropRunDatabases } from "./database";
import type { MongoStandIn } from "./mongo-standin";

export default async function globalTeardown() {
	const standIn = (globalThis as { mongoStandIn?: MongoStandIn }).mongoStandIn;
	if (process.env.MONGO_URI) {
		// A server that does not let this user list or drop databases keeps them: say so, the run itself passed or failed already.
		await dropRunDatabases(process.env.MONGO_URI, process.env.MOLESHOP_TEST_RUN!).catch((err: Error) =>
			console.warn(
				`Could not drop the test databases moleshop_test_${process.env.MOLESHOP_TEST_RUN}_* on MONGO_URI: ${err.message}`,
			),
		);
	}
	await standIn?.close();
}
