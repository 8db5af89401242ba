/**
 * The order saga: the steps after an order holds its stock, each written
 * beside what undoes it, and the one writer of an order's status.
 *
 * - reserved → paid: payments.charge (idempotent per order), invoices.issue
 *   (idempotent per order), products.commitStock, then the status write with
 *   its `order.paid` event. A failed charge is compensated instead:
 *   products.releaseStock, then reserved → payment_failed with `order.payment_failed`.
 * - paid → cancelling → cancelled: payments.refund, products.restockOrder
 *   (each idempotent per order), then the status write with `order.cancelled`.
 *
 * Every step before a status write can run again with no second effect, and
 * each status write is conditional on the state it leaves, so a step cut short
 * by a crash is simply run again: by the request that started it, or by the
 * recovery sweep (`recoverOrders`), which finishes every order left in an
 * intermediate state (lifecycle.ts) longer than ORDER_RECOVERY_AFTER_MS.
 * A charge the provider cannot account for yet stays `reserved` until it can.
 */
import { domainEvent, type DomainEvent } from "../../contracts/events";
import { CHARGE_TIMEOUT_MS } from "../../contracts/payments";
import { config } from "../../platform/config";
import { isClientRefusal } from "../../platform/errors";
import { countMetric } from "../../platform/metrics";
import { assertMove, FINAL, finishingStep, INTERMEDIATE, type OrderStatus, type TimelineEntry } from "./lifecycle";
import { eventLines, stockLines, type OrderDoc, type OrdersThis, type PaymentSummary } from "./order";

/** What a status write changes besides the status, and what it says. */
export interface StatusChange {
	set?: object;
	/** Fields the order no longer has after the move. */
	unset?: readonly string[];
	/** Events of the move, written with it (outbox). */
	events?: readonly DomainEvent[];
	/** A note for the timeline entry. */
	note?: string;
}

export interface SagaMethods {
	/** Take the payment of a reserved order and settle it as paid or payment_failed. Answers the order as it now is. */
	settlePayment(order: OrderDoc): Promise<OrderDoc>;
	/** Finish the cancellation of a cancelling order: refund, restock, cancelled. Answers the order as it now is. */
	completeCancellation(order: OrderDoc): Promise<OrderDoc>;
	/**
	 * Move an order from `from` to `to` (a move the lifecycle table allows), with its timeline entry and
	 * its events in the same write. False when the order was no longer in `from`.
	 */
	transition(order: OrderDoc, from: OrderStatus, to: OrderStatus, change?: StatusChange): Promise<boolean>;
	/** Finish every order stuck in an intermediate state with the step the lifecycle table names. */
	recoverOrders(): Promise<void>;
	/** The stored order, as a plain object (null once removed). */
	reload(order: OrderDoc): Promise<OrderDoc | null>;
}

/** What payments.charge answers, as far as the saga reads it. */
type ChargeOutcome =
	| { status: "succeeded"; card?: PaymentSummary["card"] }
	| { status: "failed"; failureCode: string; failureMessage?: string; card?: PaymentSummary["card"] }
	| { status: "pending" };

export const sagaMethods: SagaMethods & ThisType<OrdersThis> = {
	async settlePayment(order) {
		const orderId = this.encodeID(order._id);
		const charge = await this.broker
			.call<ChargeOutcome, object>(
				"payments.charge",
				{
					orderId,
					userId: order.userId,
					amount: order.total,
					currency: order.currency,
					paymentMethod: order.paymentMethod,
				},
				{ timeout: CHARGE_TIMEOUT_MS },
			)
			.catch((err: unknown): ChargeOutcome => {
				// payments refused the charge itself (not a lost answer, not a failure of its own): nothing was taken, so it failed.
				if (isClientRefusal(err))
					return { status: "failed", failureCode: "payment_refused", failureMessage: err.message };
				throw err;
			});

		if (charge.status === "succeeded") {
			const { items, subtotal, discount, discountCode, shipping, tax, total, currency, country } = order;
			const invoice = await this.broker.call<{ number: string }, object>("invoices.issue", {
				orderId,
				userId: order.userId,
				items,
				subtotal,
				discount,
				...(discountCode && { discountCode }),
				shipping,
				tax,
				total,
				currency,
				country,
			});
			await this.broker.call("products.commitStock", { orderId, items: stockLines(order) });
			const paidAt = new Date();
			const paid = domainEvent(
				"order.paid",
				{
					orderId,
					userId: order.userId,
					items: eventLines(order),
					subtotal,
					discount,
					shipping,
					tax,
					total,
					currency,
					invoiceNumber: invoice.number,
					paidAt: paidAt.toISOString(),
				},
				paidAt,
			);
			const payment: PaymentSummary = { status: "succeeded", card: charge.card };
			await this.transition(order, "reserved", "paid", {
				set: { invoiceNumber: invoice.number, paidAt, payment },
				events: [paid],
			});
			if (order.fromCart) {
				await this.broker
					.call("carts.removeItems", { userId: order.userId, items: stockLines(order) })
					.catch((err: Error) =>
						this.logger.warn(`Paid order ${orderId}: its lines stay in the cart (${err.message}).`),
					);
			}
		} else if (charge.status === "failed") {
			// The compensation of the reservation: the stock goes back before the order says it failed.
			await this.broker.call("products.releaseStock", { orderId, items: stockLines(order) });
			const failed = domainEvent("order.payment_failed", {
				orderId,
				userId: order.userId,
				total: order.total,
				currency: order.currency,
				reason: charge.failureCode,
			});
			const payment: PaymentSummary = {
				status: "failed",
				failureCode: charge.failureCode,
				failureMessage: charge.failureMessage,
				card: charge.card,
			};
			await this.transition(order, "reserved", "payment_failed", {
				set: { payment },
				events: [failed],
				note: charge.failureCode,
			});
		} else {
			this.logger.warn(
				`Order ${orderId}: the payment provider's answer is not known yet; the order stays reserved.`,
			);
		}
		return (await this.reload(order))!;
	},

	async completeCancellation(order) {
		const orderId = this.encodeID(order._id);
		// The compensations of the payment and of the stock commit: refund in full, put the units back.
		const refund = await this.broker.call<{ amount: number }, object>(
			"payments.refund",
			{ orderId },
			{ timeout: CHARGE_TIMEOUT_MS },
		);
		await this.broker.call("products.restockOrder", { orderId, items: stockLines(order) });
		const cancelledAt = new Date();
		const cancelled = domainEvent(
			"order.cancelled",
			{
				orderId,
				userId: order.userId,
				items: eventLines(order),
				refunded: refund.amount,
				currency: order.currency,
				cancelledAt: cancelledAt.toISOString(),
			},
			cancelledAt,
		);
		await this.transition(order, "cancelling", "cancelled", {
			set: { cancelledAt, refunded: refund.amount },
			events: [cancelled],
		});
		return (await this.reload(order))!;
	},

	async transition(order, from, to, { set = {}, unset = [], events = [], note } = {}) {
		assertMove(from, to);
		const at = new Date();
		const entry: TimelineEntry = { status: to, at, ...(note && { note }) };
		const moved = await this.updateWithEvents(
			{ _id: order._id, status: from },
			{
				$set: { ...set, status: to, updatedAt: at },
				$push: { timeline: entry },
				...(unset.length && { $unset: Object.fromEntries(unset.map(field => [field, true])) }),
			},
			events,
		);
		if (moved !== 1) return false;
		// This write made the move (it was conditional on `from`): the order is counted once.
		if (FINAL.includes(to)) countMetric(this.broker, "ordersFinished", { status: to });
		await this.entityChanged("updated", { ...order, status: to }, null as never);
		return true;
	},

	async recoverOrders() {
		if (!this.storeConnected) return; // not yet: the store opens after the sweep's timer starts
		const stale = (
			(await this.adapter.find({
				query: {
					status: { $in: INTERMEDIATE },
					updatedAt: { $lt: new Date(Date.now() - config.orders.recoverAfterMs) },
				},
				sort: ["updatedAt"],
				limit: 100,
			} as object)) as OrderDoc[]
		).map(doc => this.plain(doc));
		for (const order of stale) {
			const orderId = this.encodeID(order._id);
			try {
				await this[finishingStep(order.status)!](order);
				const now = (await this.reload(order))?.status ?? "removed";
				if (now !== "removed") this.logger.warn(`Recovery: order ${orderId}, left ${order.status}, is ${now}.`);
			} catch (err) {
				this.logger.warn(`Could not recover order ${orderId} (${order.status}) yet: ${(err as Error).message}`);
				// To the back of the queue: an order that cannot be recovered now does not hold up the others.
				await this.adapter
					.updateMany({ _id: order._id, status: order.status }, { $set: { updatedAt: new Date() } })
					.catch(() => undefined);
			}
		}
	},

	async reload(order) {
		return this.plain((await this.adapter.findById(order._id)) as OrderDoc | null);
	},
};
