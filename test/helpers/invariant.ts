/**
 * The saga's invariant, checked through the cluster's actions (so it works
 * in-process and across processes): for every order, state, ledger and stock agree.
 * - paid ⇔ exactly one succeeded charge of the order's total, no refund;
 * - payment_failed ⇔ no succeeded charge; cancelled ⇔ one charge and one equal refund;
 * - no order is left in an intermediate state;
 * - each product in `initialStock` has exactly its initial stock minus the units of its paid orders.
 */
import type { ServiceBroker } from "moleculer";

interface AuditedOrder {
	id: string;
	status: string;
	total: number;
	items: Array<{ productId: string; quantity: number }>;
}

export async function checkInvariant(broker: ServiceBroker, initialStock: Record<string, number> = {}) {
	const orders = await broker.call<AuditedOrder[], object>("orders.audit", {});
	const problems: string[] = [];
	const sold: Record<string, number> = {};
	for (const order of orders) {
		const ledger = await broker.call<any[], object>("payments.forOrder", { orderId: order.id });
		const charged = ledger.filter(e => e.kind === "charge" && e.status === "succeeded").map(e => e.amount);
		const refunded = ledger.filter(e => e.kind === "refund" && e.status === "succeeded").map(e => e.amount);
		const agrees = {
			paid: charged.length === 1 && charged[0] === order.total && refunded.length === 0,
			payment_failed: charged.length === 0 && refunded.length === 0,
			cancelled: charged.length === 1 && refunded.length === 1 && refunded[0] === charged[0],
		}[order.status];
		if (!agrees)
			problems.push(`order ${order.id} is ${order.status} with charges [${charged}] and refunds [${refunded}]`);
		if (order.status === "paid")
			for (const { productId, quantity } of order.items) sold[productId] = (sold[productId] ?? 0) + quantity;
	}
	const ids = Object.keys(initialStock);
	const products = ids.length ? await broker.call<any[], object>("products.getMany", { ids }) : [];
	for (const product of products) {
		const expected = initialStock[product.id] - (sold[product.id] ?? 0);
		if (product.stock !== expected)
			problems.push(`product ${product.id} has ${product.stock} in stock, expected ${expected}`);
	}
	expect(problems).toEqual([]);
	return orders;
}
