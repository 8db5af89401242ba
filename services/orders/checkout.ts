/**
 * Checkout: from a request to an order that holds its stock, then on to its payment (saga.ts).
 *
 * Checkout prices every line from the catalog, stores the order as `pending`,
 * reserves its stock through `products.reserveStock` (all or nothing,
 * idempotent per order id), marks it `reserved` and takes the payment: `paid`,
 * or `payment_failed` with the stock back. A checkout that cannot reserve is
 * abandoned: its stock is released by order id and the pending order removed —
 * right away when the failure is known, or by the recovery sweep after a crash
 * or a lost answer.
 *
 * With an `Idempotency-Key`, the order document itself is the claim on the
 * key: a unique index on `idempotencyKey` lets exactly one of several
 * concurrent repeats create the order, and the others answer with it.
 */
import { createHash } from "node:crypto";
import type { ShopContext } from "../../contracts/context";
import { MAX_QUANTITY, mergeItems, type ItemRequest } from "../../contracts/items";
import { CHARGE_TIMEOUT_MS, MAX_CHARGE } from "../../contracts/payments";
import { QUOTE_CALL_OPTIONS, type PricingQuote, type Quote, type QuoteParams } from "../../contracts/pricing";
import { config } from "../../platform/config";
import { isClientRefusal } from "../../platform/errors";
import { conflict, notFound, refusal, unprocessable } from "../../contracts/errors";
import { IN_CHECKOUT } from "./lifecycle";
import { stockLines, type Order, type OrderDoc, type OrdersThis } from "./order";

/** A checkout still pending after this long is stale: it is abandoned and its key freed. */
const PENDING_TIMEOUT_MS = config.orders.recoverAfterMs;
/** How long a repeat waits for the first request with its key to finish. */
const IDEMPOTENCY_WAIT_MS = CHARGE_TIMEOUT_MS + 2_000;
const IDEMPOTENCY_POLL_MS = 50;
/**
 * Checkout at its slowest: the account, the quote, the reservation, the invoice, the stock commit and the
 * cart, each within the 3 s request timeout, plus the charge with its lookup. A repeat waits up to
 * IDEMPOTENCY_WAIT_MS first. (A step that times out does not fail the checkout: it answers 202.)
 */
export const CHECKOUT_TIMEOUT_MS = IDEMPOTENCY_WAIT_MS + CHARGE_TIMEOUT_MS + 6 * 3_000;

export interface CheckoutParams {
	items?: ItemRequest[];
	fromCart?: boolean;
	country?: string;
	discountCode?: string;
	paymentMethod: string;
}

export interface CheckoutMethods {
	/** Place the order of a checkout request (or answer the one its Idempotency-Key already placed). */
	checkout(ctx: ShopContext<CheckoutParams>, key: string | undefined): Promise<Order>;
	/** 201 for a paid order, 202 for one whose payment is not settled yet, 402 for a failed payment. */
	answerCheckout(ctx: ShopContext, order: Order): Order;
	/**
	 * Run the next saga step of an order; when it cannot finish now (a service down, a timeout), the order
	 * as it is: the recovery sweep finishes the step, and the client is told the order is under way (202).
	 */
	unlessInterrupted(order: OrderDoc, step: () => Promise<OrderDoc>): Promise<OrderDoc>;
	/**
	 * The order an earlier request with this key created, once it is placed and its payment settled (or,
	 * past the wait, as it is); null when there is none (any more). A different request under the same
	 * key is refused; a stale claim is abandoned so the key can be used again.
	 */
	replay(ctx: ShopContext, key: string, requestHash: string): Promise<Order | null>;
	requestedItems(ctx: ShopContext<CheckoutParams>): Promise<ItemRequest[]>;
	/** The quote of the order's lines as it is placed. */
	priceOrder(ctx: ShopContext<CheckoutParams>, items: ItemRequest[]): Promise<Quote>;
	/**
	 * Give up a checkout: claim it (pending → abandoned, so it can no longer become reserved, and its
	 * Idempotency-Key is free again), then release whatever stock it holds. The abandoned order stays
	 * until the recovery sweep releases once more — a reservation still under way when it was abandoned
	 * has finished by then — and removes it. Returns false when it was not this call's to abandon.
	 */
	abandonCheckout(order: OrderDoc): Promise<boolean>;
	/** The second and last release of an abandoned checkout; then it is gone. */
	removeAbandoned(order: OrderDoc): Promise<void>;
}

/** The same lines in any order, or the same cart, to the same place with the same code and payment method, hash the same. */
function hashRequest(params: CheckoutParams): string {
	const lines = mergeItems(params.items ?? []).sort((a, b) => a.productId.localeCompare(b.productId));
	const body = {
		...(params.fromCart ? { fromCart: true } : { items: lines }),
		country: params.country,
		discountCode: params.discountCode,
		paymentMethod: params.paymentMethod,
	};
	return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

export const checkoutMethods: CheckoutMethods & ThisType<OrdersThis> = {
	async checkout(ctx, key) {
		const requestHash = hashRequest(ctx.params);
		if (key) {
			const earlier = await this.replay(ctx, key, requestHash);
			if (earlier) return earlier;
		}
		const userId = ctx.meta.user!.id;
		await ctx.call("users.get", { id: userId }); // 404 when the account is gone
		const priced = await this.priceOrder(ctx, await this.requestedItems(ctx));
		const now = new Date();
		let order: OrderDoc;
		try {
			order = this.plain(
				await this.adapter.insert({
					userId,
					...priced,
					status: "pending",
					timeline: [],
					paymentMethod: ctx.params.paymentMethod,
					createdAt: now,
					updatedAt: now,
					...(ctx.params.fromCart && { fromCart: true }),
					...(key && { idempotencyKey: key, requestHash }),
				}),
			) as OrderDoc;
		} catch (err) {
			// A concurrent request with the same key got there first: answer with its order.
			if (key && this.isDuplicateKeyError(err))
				return (await this.replay(ctx, key, requestHash)) ?? this.checkout(ctx, key);
			throw err;
		}

		const orderId = this.encodeID(order._id);
		try {
			await ctx.call("products.reserveStock", { orderId, items: stockLines(order) });
		} catch (err) {
			if (isClientRefusal(err) && err.type === "OUT_OF_STOCK")
				await this.adapter.removeMany({ _id: order._id }); // nothing is held
			else
				await this.abandonCheckout(order).catch(e =>
					this.logger.warn(`Checkout ${orderId} is left to the sweep: ${e.message}`),
				);
			throw err;
		}
		if (!(await this.transition(order, "pending", "reserved"))) {
			// The sweep abandoned this checkout meanwhile; its release may have come before our reservation.
			await ctx.call("products.releaseStock", { orderId, items: stockLines(order) });
			throw conflict("The checkout took too long and was abandoned; please try again", "CHECKOUT_ABANDONED");
		}
		return this.toEntity(
			ctx,
			await this.unlessInterrupted(order, () => this.settlePayment({ ...order, status: "reserved" })),
		);
	},

	async unlessInterrupted(order, step) {
		try {
			return await step();
		} catch (err) {
			if (isClientRefusal(err)) throw err;
			this.logger.warn(
				`Order ${this.encodeID(order._id)} is left to the recovery sweep: ${(err as Error)?.message}`,
			);
			return (await this.reload(order))!;
		}
	},

	answerCheckout(ctx, order) {
		if (order.status === "payment_failed") {
			throw refusal(402, "PAYMENT_FAILED", order.payment?.failureMessage ?? "The payment failed", {
				orderId: order.id,
				reason: order.payment?.failureCode,
			});
		}
		const location = `/api/v1/orders/${order.id}`;
		ctx.meta.$statusCode = order.status === "reserved" ? 202 : 201;
		ctx.meta.$location = location; // moleculer-web sends it with a 201
		if (order.status === "reserved")
			ctx.meta.$responseHeaders = { ...ctx.meta.$responseHeaders, Location: location };
		return order;
	},

	async replay(ctx, key, requestHash) {
		const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
		for (;;) {
			const doc = (await this.adapter.findOne({ idempotencyKey: key })) as OrderDoc | null;
			if (!doc) return null;
			if (doc.requestHash !== requestHash) {
				throw unprocessable(
					"This Idempotency-Key was already used for a different request",
					"IDEMPOTENCY_KEY_REUSED",
				);
			}
			const settling = doc.status === "reserved" && Date.now() < deadline;
			if (!IN_CHECKOUT.includes(doc.status) && !settling) {
				ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
				return this.toEntity<Order>(ctx, doc);
			}
			if (!settling && Date.now() - new Date(doc.updatedAt).getTime() > PENDING_TIMEOUT_MS) {
				await this.abandonCheckout(this.plain(doc));
				continue;
			}
			if (Date.now() > deadline)
				throw conflict("A request with this Idempotency-Key is still in progress", "IDEMPOTENCY_KEY_IN_USE");
			await sleep(IDEMPOTENCY_POLL_MS);
		}
	},

	async requestedItems(ctx) {
		const items = ctx.params.fromCart
			? await ctx.call<ItemRequest[], { userId: string }>("carts.items", { userId: ctx.meta.user!.id })
			: mergeItems(ctx.params.items!);
		if (items.length === 0) throw unprocessable("The cart is empty", "EMPTY_CART");
		const tooMany = items.find(item => item.quantity > MAX_QUANTITY);
		if (tooMany)
			throw unprocessable(`At most ${MAX_QUANTITY} of one product per order`, "QUANTITY_TOO_LARGE", {
				productId: tooMany.productId,
			});
		return items;
	},

	async priceOrder(ctx, items) {
		const { country, discountCode } = ctx.params;
		const { missing, ...quote } = await ctx.call<PricingQuote, QuoteParams>(
			"pricing.quote",
			{ items, country, discountCode },
			QUOTE_CALL_OPTIONS,
		);
		if (missing.length) throw notFound("Product", missing.join(","));
		if (quote.total > MAX_CHARGE)
			throw unprocessable(`An order can total at most ${MAX_CHARGE} cents`, "ORDER_TOO_LARGE", {
				total: quote.total,
			});
		return quote;
	},

	async abandonCheckout(order) {
		if (!(await this.transition(order, "pending", "abandoned", { unset: ["idempotencyKey"] }))) return false;
		await this.broker.call("products.releaseStock", {
			orderId: this.encodeID(order._id),
			items: stockLines(order),
		});
		return true;
	},

	async removeAbandoned(order) {
		await this.broker.call("products.releaseStock", {
			orderId: this.encodeID(order._id),
			items: stockLines(order),
		});
		await this.adapter.removeMany({ _id: order._id, status: "abandoned" });
	},
};
