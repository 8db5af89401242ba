/**
 * Tests of behaviour that only the embedded store has. On the MongoDB path they are
 * skipped, and the skipped test's name says why (Jest lists skipped tests by name).
 */
import { config } from "../../lib/config";

/** `it` on NeDB; on MongoDB a skipped test named with the reason it does not apply there. */
export function itOnEmbeddedStore(name: string, whyNotOnMongo: string, fn: jest.ProvidesCallback, timeout?: number) {
	if (config.mongoUri) it.skip(`${name} [NeDB only: ${whyNotOnMongo}]`, fn, timeout);
	else it(name, fn, timeout);
}
