/**
 * The order lifecycle: every status an order can have, every move between two
 * of them, and the step that finishes each status an order only passes
 * through. This table is the single source of truth: `transition` (the only
 * writer of an order's status) refuses a move it does not list, and the
 * recovery sweep asks it which step finishes an order it finds stuck.
 *
 *   pending ──reserved──▶ reserved ──paid──▶ paid ──cancelling──▶ cancelling ──▶ cancelled
 *      │                     └──payment_failed──▶ payment_failed
 *      └──abandoned──▶ abandoned ──(its stock released again, then removed)
 *
 * `pending` and `abandoned` are steps inside a checkout: they are not placed
 * orders, and customers never see them.
 */

export type OrderStatus = "pending" | "abandoned" | "reserved" | "paid" | "payment_failed" | "cancelling" | "cancelled";

/** The orders service's step that drives an order out of an intermediate status (see saga.ts and checkout.ts). */
export type FinishingStep = "abandonCheckout" | "removeAbandoned" | "settlePayment" | "completeCancellation";

export interface StatusRule {
	/** The statuses an order in this one may move to. */
	readonly to: readonly OrderStatus[];
	/** For a status an order only passes through: the step that finishes it. */
	readonly finish?: FinishingStep;
	/** Whether an order in this status is placed: listed, shown and counted for its customer. */
	readonly placed: boolean;
}

export const LIFECYCLE: Readonly<Record<OrderStatus, StatusRule>> = {
	pending: { to: ["reserved", "abandoned"], finish: "abandonCheckout", placed: false },
	abandoned: { to: [], finish: "removeAbandoned", placed: false },
	reserved: { to: ["paid", "payment_failed"], finish: "settlePayment", placed: true },
	paid: { to: ["cancelling"], placed: true },
	payment_failed: { to: [], placed: true },
	cancelling: { to: ["cancelled"], finish: "completeCancellation", placed: true },
	cancelled: { to: [], placed: true },
};

export const ORDER_STATUSES = Object.keys(LIFECYCLE) as OrderStatus[];

/** Statuses an order only passes through; the recovery sweep finishes an order that stays in one. */
export const INTERMEDIATE: readonly OrderStatus[] = ORDER_STATUSES.filter(status => LIFECYCLE[status].finish);

/** Statuses an order may rest in (no step finishes them): reaching one is an outcome (moleshop_orders_finished_total). */
export const FINAL: readonly OrderStatus[] = ORDER_STATUSES.filter(status => !LIFECYCLE[status].finish);

/** Statuses of a checkout still in progress: not an order its customer sees. */
export const IN_CHECKOUT: readonly OrderStatus[] = ORDER_STATUSES.filter(status => !LIFECYCLE[status].placed);

/** Whether the table allows an order to move from `from` to `to`. */
export function canMove(from: OrderStatus, to: OrderStatus): boolean {
	return LIFECYCLE[from].to.includes(to);
}

/** Refuse a move the table does not list: a programming error, never a client's. */
export function assertMove(from: OrderStatus, to: OrderStatus): void {
	if (!canMove(from, to)) throw new Error(`An order cannot move from ${from} to ${to}`);
}

/** The step that finishes an order in `status`, or undefined for a status it may rest in. */
export function finishingStep(status: OrderStatus): FinishingStep | undefined {
	return LIFECYCLE[status].finish;
}

/** One line of an order's timeline: each status it entered, when, and why if there is more to say. */
export interface TimelineEntry {
	status: OrderStatus;
	at: Date;
	note?: string;
}
