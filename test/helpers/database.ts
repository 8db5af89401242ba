/**
 * The test databases of the MongoDB path: one per test file, named after the run
 * (env.ts), so that whatever a file's brokers and nodes leave behind can be dropped.
 */
import mongoose from "mongoose";

/** The prefix of this run's database names (MOLESHOP_TEST_RUN is set once per run by global-setup). */
export const runPrefix = (run = process.env.MOLESHOP_TEST_RUN) => `moleshop_test_${run}_`;

/** The server part of a `mongodb://` URI, without database or options. */
export function serverOf(uri: string): string {
	const server = uri.split("?")[0].match(/^(mongodb(?:\+srv)?:\/\/[^/]+)/)?.[1];
	if (!server) throw new Error(`MONGO_URI is not a mongodb:// URI: ${uri}`);
	return server;
}

/** Run `work` on a connection of its own to `uri` (never the services' shared one). */
async function withConnection<T>(uri: string, work: (conn: mongoose.Connection) => Promise<T>): Promise<T> {
	const conn = await mongoose.createConnection(uri, { serverSelectionTimeoutMS: 10_000 }).asPromise();
	try {
		return await work(conn);
	} finally {
		await conn.close();
	}
}

/** Drop the database `uri` names. */
export function dropDatabase(uri: string): Promise<void> {
	return withConnection(uri, async conn => void (await conn.dropDatabase()));
}

/** Drop every database of this run on the server of `uri`. */
export function dropRunDatabases(uri: string, run: string): Promise<string[]> {
	return withConnection(serverOf(uri), async conn => {
		const { databases } = await conn.db!.admin().listDatabases({ nameOnly: true });
		const ours = databases.map(d => d.name).filter(name => name.startsWith(runPrefix(run)));
		for (const name of ours) await conn.useDb(name, { useCache: false }).dropDatabase();
		return ours;
	});
}
