/** Views counted in memory (services/api/view-counter.ts): running totals, what changed, what is forgotten. */
import { ViewCounter } from "../../../../services/api/view-counter";

describe("ViewCounter", () => {
	const at = (iso: string) => Date.parse(iso);

	it("counts views per product and UTC day, and tells the totals that changed since they were published", () => {
		const counter = new ViewCounter();
		counter.count("p", at("2020-03-01T23:59:59.999Z"));
		counter.count("p", at("2020-03-01T10:00:00.000Z"));
		counter.count("q", at("2020-03-01T10:00:00.000Z"));
		counter.count("p", at("2020-03-02T00:00:00.000Z"));
		const first = counter.changed();
		expect(first).toEqual([
			{ productId: "p", day: "2020-03-01", views: 2 },
			{ productId: "q", day: "2020-03-01", views: 1 },
			{ productId: "p", day: "2020-03-02", views: 1 },
		]);
		counter.count("q", at("2020-03-02T08:00:00.000Z")); // while the publish is under way
		counter.published(first, "2020-03-02");
		expect(counter.changed()).toEqual([{ productId: "q", day: "2020-03-02", views: 1 }]);
		counter.count("p", at("2020-03-02T09:00:00.000Z"));
		expect(counter.changed()).toEqual([
			{ productId: "p", day: "2020-03-02", views: 2 }, // a running total, not the views since
			{ productId: "q", day: "2020-03-02", views: 1 },
		]);
	});

	it("keeps totals whose publish failed, and forgets past days only once they are published", () => {
		const counter = new ViewCounter();
		counter.count("p", at("2020-03-01T10:00:00.000Z"));
		counter.count("p", at("2020-03-02T10:00:00.000Z"));
		expect(counter.changed()).toHaveLength(2); // a failed publish marks nothing: the next one sends it again
		counter.published([{ productId: "p", day: "2020-03-02", views: 1 }], "2020-03-02");
		expect(counter.changed()).toEqual([{ productId: "p", day: "2020-03-01", views: 1 }]);
		counter.published(counter.changed(), "2020-03-02");
		expect(counter.changed()).toEqual([]);
		expect((counter as any).totals.size).toBe(1); // 2020-03-01 is published and over: forgotten
		counter.count("p", at("2020-03-02T11:00:00.000Z"));
		expect(counter.changed()).toEqual([{ productId: "p", day: "2020-03-02", views: 2 }]);
	});

	it("is a new counter for every process", () => {
		expect(new ViewCounter().id).not.toBe(new ViewCounter().id);
	});
});
