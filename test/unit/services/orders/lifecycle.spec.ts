/** The order lifecycle table (services/orders/lifecycle.ts), with no broker: every pair of statuses. */
import {
	assertMove,
	canMove,
	finishingStep,
	IN_CHECKOUT,
	INTERMEDIATE,
	LIFECYCLE,
	ORDER_STATUSES,
	type OrderStatus,
} from "../../../../services/orders/lifecycle";

/** The moves moleshop makes, written out once more by hand: the table must say exactly this. */
const ALLOWED: ReadonlyArray<[OrderStatus, OrderStatus]> = [
	["pending", "reserved"],
	["pending", "abandoned"],
	["reserved", "paid"],
	["reserved", "payment_failed"],
	["paid", "cancelling"],
	["cancelling", "cancelled"],
];

describe("the order lifecycle", () => {
	it("knows the seven statuses", () => {
		expect([...ORDER_STATUSES].sort()).toEqual([
			"abandoned",
			"cancelled",
			"cancelling",
			"paid",
			"payment_failed",
			"pending",
			"reserved",
		]);
	});

	const pairs = ORDER_STATUSES.flatMap(from => ORDER_STATUSES.map(to => [from, to] as const));
	it.each(pairs)("%s → %s is allowed only if listed", (from, to) => {
		const listed = ALLOWED.some(([a, b]) => a === from && b === to);
		expect(canMove(from, to)).toBe(listed);
		if (listed) expect(() => assertMove(from, to)).not.toThrow();
		else expect(() => assertMove(from, to)).toThrow(`An order cannot move from ${from} to ${to}`);
	});

	it("names the step that finishes each intermediate status, and none for a status an order rests in", () => {
		expect(Object.fromEntries(ORDER_STATUSES.map(status => [status, finishingStep(status) ?? null]))).toEqual({
			pending: "abandonCheckout",
			abandoned: "removeAbandoned",
			reserved: "settlePayment",
			paid: null,
			payment_failed: null,
			cancelling: "completeCancellation",
			cancelled: null,
		});
		expect([...INTERMEDIATE].sort()).toEqual(["abandoned", "cancelling", "pending", "reserved"]);
	});

	it("leaves every status an order rests in either final or with a way on; every intermediate one has a way out", () => {
		for (const status of INTERMEDIATE) {
			if (status !== "abandoned") expect(LIFECYCLE[status].to.length).toBeGreaterThan(0); // an abandoned checkout is removed, not moved
		}
		expect(
			ORDER_STATUSES.filter(status => LIFECYCLE[status].to.length === 0 && !finishingStep(status)).sort(),
		).toEqual(["cancelled", "payment_failed"]);
	});

	it("hides the checkouts in progress from customers, and only them", () => {
		expect([...IN_CHECKOUT].sort()).toEqual(["abandoned", "pending"]);
	});
});
