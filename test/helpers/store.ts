/**
 * Tests that hold on one store only. Behaviour only the embedded store has is skipped on
 * the MongoDB path, the skipped test's name saying why (Jest lists skipped tests by name);
 * tests of the MongoDB path itself run only where MONGO_URI is set (the "mongodb" project).
 */
import { config } from "../../platform/config";

/** `it` on NeDB; on MongoDB a skipped test named with the reason it does not apply there. */
export function itOnEmbeddedStore(name: string, whyNotOnMongo: string, fn: jest.ProvidesCallback, timeout?: number) {
	if (config.mongoUri) it.skip(`${name} [NeDB only: ${whyNotOnMongo}]`, fn, timeout);
	else it(name, fn, timeout);
}

/** `describe` for tests of the MongoDB path: skipped in the "nedb" project, which has no MONGO_URI. */
export const describeOnMongo: jest.Describe = config.mongoUri ? describe : describe.skip;
