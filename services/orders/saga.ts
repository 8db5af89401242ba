/**
 * The order saga: the steps after an order holds its stock, for the orders service.
 *
 *   reserved ──charge ok──▶ paid ──cancel──▶ cancelling ──▶ cancelled
 *       └────charge failed──▶ payment_failed
 *
 * - reserved → paid: payments.charge (idempotent per order), invoices.issue
 *   (idempotent per order), products.commitStock, then the status write with
 *   its `order.paid` event (outbox).
 * - reserved → payment_failed: products.releaseStock, then the status write
 *   with `order.payment_failed`.
 * - paid → cancelling → cancelled: payments.refund, products.restockOrder
 *   (each idempotent per order), then the status write with `order.cancelled`.
 *
 * Every step before a status write can run again with no second effect, and
 * each status write is conditional on the state it leaves, so a step cut short
 * by a crash is simply run again: by the request that started it, or by the
 * recovery sweep (`recoverOrders`), which drives every order left in an
 * intermediate state longer than ORDER_RECOVERY_AFTER_MS to a final state.
 * A charge the provider cannot account for yet stays `reserved` until it can.
 */
import type { ServiceSchema } from "moleculer";
import { config } from "../../platform/config";
import { isClientRefusal } from "../../platform/errors";
import { domainEvent, type DomainEvent, type EventLine } from "../../contracts/events";
import { CHARGE_TIMEOUT_MS } from "../../contracts/payments";
import type { PricedLine, Quote } from "../../contracts/pricing";
import { outboxPush } from "../../platform/outbox.mixin";

export type OrderStatus = "pending" | "abandoned" | "reserved" | "paid" | "payment_failed" | "cancelling" | "cancelled";

export interface TimelineEntry {
	status: OrderStatus;
	at: Date;
	note?: string;
}

/** The stored order, as far as the saga needs it. */
export interface SagaOrder extends Quote {
	_id: any;
	userId: string;
	status: OrderStatus;
	paymentMethod: string;
	fromCart?: boolean;
	invoiceNumber?: string;
	updatedAt: Date;
}

export interface SagaMethods {
	/** Take the payment of a reserved order and settle it as paid or payment_failed. Answers the order as it now is. */
	settlePayment(order: SagaOrder): Promise<SagaOrder>;
	/** Finish the cancellation of a cancelling order: refund, restock, cancelled. */
	completeCancellation(order: SagaOrder): Promise<SagaOrder>;
	/** Move an order from one status to the next, with its timeline entry and events. False when it was no longer in `from`. */
	transition(order: SagaOrder, from: OrderStatus, to: OrderStatus, set?: object, events?: DomainEvent[], note?: string): Promise<boolean>;
	/** Drive every order stuck in an intermediate state to a final state. */
	recoverOrders(): Promise<void>;
}

/** States an order only passes through; the sweep finishes whatever stays in one. */
export const INTERMEDIATE: OrderStatus[] = ["pending", "abandoned", "reserved", "cancelling"];
const SWEEP_INTERVAL_MS = Math.max(1_000, Math.round(config.orders.recoverAfterMs / 3));

/** An order's lines as stock moves see them. */
export const stockLines = (order: { items: PricedLine[] }) => order.items.map(({ productId, quantity }) => ({ productId, quantity }));
const eventLines = (order: SagaOrder): EventLine[] =>
	order.items.map(({ productId, sku, name, quantity, unitPrice, lineTotal }) => ({ productId, sku, name, quantity, unitPrice, lineTotal }));

export const OrderSagaMixin: Partial<ServiceSchema<any>> = {
	methods: {
		async settlePayment(this: any, order: SagaOrder) {
			const orderId = this.encodeID(order._id);
			const charge = await this.broker.call("payments.charge", {
				orderId, userId: order.userId, amount: order.total, currency: order.currency, paymentMethod: order.paymentMethod,
			}, { timeout: CHARGE_TIMEOUT_MS }).catch((err: unknown) => {
				// payments refused the charge itself (not a lost answer, not a failure of its own): nothing was taken, so it failed.
				if (isClientRefusal(err)) return { status: "failed", failureCode: "payment_refused", failureMessage: err.message };
				throw err;
			});

			if (charge.status === "succeeded") {
				const { items, subtotal, discount, discountCode, shipping, tax, total, currency, country } = order;
				const invoice = await this.broker.call("invoices.issue", {
					orderId, userId: order.userId, items, subtotal, discount, ...(discountCode && { discountCode }), shipping, tax, total, currency, country,
				});
				await this.broker.call("products.commitStock", { orderId, items: stockLines(order) });
				const paidAt = new Date();
				const paid = domainEvent("order.paid", {
					orderId, userId: order.userId, items: eventLines(order), subtotal: order.subtotal, discount: order.discount,
					shipping: order.shipping, tax: order.tax, total: order.total, currency: order.currency,
					invoiceNumber: invoice.number, paidAt: paidAt.toISOString(),
				}, paidAt);
				await this.transition(order, "reserved", "paid", { invoiceNumber: invoice.number, paidAt, payment: { status: "succeeded", card: charge.card } }, [paid]);
				if (order.fromCart) {
					await this.broker.call("carts.removeItems", { userId: order.userId, items: stockLines(order) })
						.catch((err: Error) => this.logger.warn(`Paid order ${orderId}: its lines stay in the cart (${err.message}).`));
				}
			} else if (charge.status === "failed") {
				await this.broker.call("products.releaseStock", { orderId, items: stockLines(order) });
				const failed = domainEvent("order.payment_failed", {
					orderId, userId: order.userId, total: order.total, currency: order.currency, reason: charge.failureCode,
				});
				const payment = { status: "failed", failureCode: charge.failureCode, failureMessage: charge.failureMessage, card: charge.card };
				await this.transition(order, "reserved", "payment_failed", { payment }, [failed], charge.failureCode);
			} else {
				this.logger.warn(`Order ${orderId}: the payment provider's answer is not known yet; the order stays reserved.`);
			}
			return this.plain(await this.adapter.findById(order._id));
		},

		async completeCancellation(this: any, order: SagaOrder) {
			const orderId = this.encodeID(order._id);
			const refund = await this.broker.call("payments.refund", { orderId }, { timeout: CHARGE_TIMEOUT_MS });
			await this.broker.call("products.restockOrder", { orderId, items: stockLines(order) });
			const cancelledAt = new Date();
			const cancelled = domainEvent("order.cancelled", {
				orderId, userId: order.userId, items: eventLines(order), refunded: refund.amount, currency: order.currency, cancelledAt: cancelledAt.toISOString(),
			}, cancelledAt);
			await this.transition(order, "cancelling", "cancelled", { cancelledAt, refunded: refund.amount }, [cancelled]);
			return this.plain(await this.adapter.findById(order._id));
		},

		async transition(this: any, order: SagaOrder, from: OrderStatus, to: OrderStatus, set: object = {}, events: DomainEvent[] = [], note?: string) {
			const at = new Date();
			const entry: TimelineEntry = { status: to, at, ...(note && { note }) };
			const { $push: outbox } = events.length ? outboxPush(...events) : { $push: {} };
			const moved = await this.adapter.updateMany(
				{ _id: order._id, status: from },
				{ $set: { ...set, status: to, updatedAt: at }, $push: { timeline: entry, ...outbox } },
			);
			if (moved !== 1) return false;
			if (events.length) void this.relayOutbox({ _id: order._id });
			await this.entityChanged("updated", { ...order, status: to }, null);
			return true;
		},

		async recoverOrders(this: any) {
			if (!this.storeConnected) return; // not yet: the store opens after this mixin's timer starts
			const stale = ((await this.adapter.find({
				query: { status: { $in: INTERMEDIATE }, updatedAt: { $lt: new Date(Date.now() - config.orders.recoverAfterMs) } },
				sort: ["updatedAt"],
				limit: 100,
			} as object)) as SagaOrder[]).map(doc => this.plain(doc));
			for (const order of stale) {
				const orderId = this.encodeID(order._id);
				try {
					if (order.status === "reserved") await this.settlePayment(order);
					else if (order.status === "cancelling") await this.completeCancellation(order);
					else if (order.status === "pending") await this.abandonCheckout(order);
					else await this.removeAbandoned(order);
					const now = (await this.adapter.findById(order._id))?.status ?? "removed";
					if (now !== "removed") this.logger.warn(`Recovery: order ${orderId}, left ${order.status}, is ${now}.`);
				} catch (err: any) {
					this.logger.warn(`Could not recover order ${orderId} (${order.status}) yet: ${err.message}`);
					// To the back of the queue: an order that cannot be recovered now does not hold up the others.
					await this.adapter.updateMany({ _id: order._id, status: order.status }, { $set: { updatedAt: new Date() } }).catch(() => undefined);
				}
			}
		},
	},

	started(this: any) {
		const sweep = () => this.recoverOrders().catch((err: Error) => this.logger.warn(`Order recovery failed: ${err.message}`));
		this.recoveryTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
		this.recoveryTimer.unref();
	},

	stopped(this: any) {
		clearInterval(this.recoveryTimer);
	},
};
