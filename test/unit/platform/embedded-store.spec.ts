/** The embedded store's datafile lines: the same as NeDB's own, so NeDB loads them back as it wrote them. */
import { deserialize, serialize } from "@seald-io/nedb/lib/model.js";
import { datafileLine } from "../../../platform/embedded-store";

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
	return () => {
		seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
		return seed / 2 ** 31;
	};
}

/** A document of every kind of value a stored document holds, nested up to `depth`. */
function documentFrom(next: () => number, depth = 3): Record<string, unknown> {
	const value = (level: number): unknown => {
		const pick = Math.floor(next() * (level > 0 ? 9 : 7));
		switch (pick) {
			case 0:
				return new Date(Math.floor(next() * 2e12));
			case 1:
				return Math.floor(next() * 1e6) - 5e5;
			case 2:
				return next() * 100;
			case 3:
				return `text ${Math.floor(next() * 1e4)} "quoted" \\ é ✓ \n`;
			case 4:
				return next() < 0.5;
			case 5:
				return null;
			case 6:
				return undefined;
			case 7:
				return Array.from({ length: Math.floor(next() * 4) }, () => value(level - 1));
			default:
				return Object.fromEntries(
					Array.from({ length: Math.floor(next() * 4) }, (_, i) => [`f${i}`, value(level - 1)]),
				);
		}
	};
	return Object.fromEntries(Array.from({ length: 1 + Math.floor(next() * 8) }, (_, i) => [`k${i}`, value(depth)]));
}

describe("datafileLine", () => {
	it("writes an order as NeDB does: dates as $$date, undefined fields left out", () => {
		const at = new Date("2026-12-02T10:00:00.000Z");
		const order = {
			_id: "abc",
			total: 998,
			note: undefined,
			timeline: [{ status: "paid", at }],
			payment: { card: { last4: "4242" } },
			createdAt: at,
		};
		expect(datafileLine(order)).toBe(serialize(order));
		expect(datafileLine(order)).toBe(
			`{"_id":"abc","total":998,"timeline":[{"status":"paid","at":{"$$date":${at.getTime()}}}],"payment":{"card":{"last4":"4242"}},"createdAt":{"$$date":${at.getTime()}}}`,
		);
		expect(order.timeline[0].at).toBe(at); // the document itself is left as it was
	});

	it("is NeDB's serialize for any document, and NeDB reads it back to the same document", () => {
		const next = random(20261202);
		for (let n = 0; n < 2_000; n++) {
			const doc = documentFrom(next);
			const line = datafileLine(doc);
			expect(line).toBe(serialize(doc));
			expect(deserialize(line)).toEqual(deserialize(serialize(doc)));
		}
	});
});
