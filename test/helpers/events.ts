/**
 * Domain events as their producers send them, for tests of their consumers. Fixed days are in 2020,
 * far from the analytics default of "the last 30 days".
 */
import { domainEvent, type DomainEvent, type EventLine } from "../../contracts/events";

let sequence = 0;
/** A fresh number for ids made up by the builders below. */
export const nextNumber = () => ++sequence;
export const line = (productId: string, quantity: number, unitPrice: number): EventLine => ({
	productId,
	sku: `SKU-${productId}`,
	name: `Product ${productId}`,
	quantity,
	unitPrice,
	lineTotal: quantity * unitPrice,
});

export function paid(at: string, items: EventLine[], opts: { total?: number; currency?: string } = {}) {
	const n = ++sequence;
	const subtotal = items.reduce((sum, item) => sum + item.lineTotal, 0);
	return domainEvent(
		"order.paid",
		{
			orderId: `order${n}`,
			userId: "u1",
			items,
			subtotal,
			discount: 0,
			shipping: 0,
			tax: 0,
			total: opts.total ?? subtotal,
			currency: opts.currency ?? "USD",
			invoiceNumber: `INV-${n}`,
			paidAt: at,
		},
		new Date(at),
	);
}
export const cancelled = ({ data }: DomainEvent<"order.paid">, at: string) =>
	domainEvent(
		"order.cancelled",
		{
			orderId: data.orderId,
			userId: data.userId,
			items: data.items,
			refunded: data.total,
			currency: data.currency,
			cancelledAt: at,
		},
		new Date(at),
	);
export const failed = (at: string, total: number) =>
	domainEvent(
		"order.payment_failed",
		{ orderId: `order${++sequence}`, userId: "u1", total, currency: "USD", reason: "card_declined" },
		new Date(at),
	);
export const registered = (at: string) => domainEvent("user.registered", { userId: `user${++sequence}` }, new Date(at));
/** One view, as nodes of earlier versions published it. */
export const viewed = (productId: string, at: string) =>
	domainEvent("product.viewed", { productId, userId: null }, new Date(at));
/** A counter's running view totals: `{ productId: views }` on `day`. */
export const viewTotals = (counter: string, day: string, totals: Record<string, number>) =>
	domainEvent("product.views", {
		counter,
		counts: Object.entries(totals).map(([productId, views]) => ({ productId, day, views })),
	});
