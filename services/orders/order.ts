/**
 * What an order is: as the orders service stores it, and as its customer sees it.
 * The orders service's modules (checkout, saga) all work on these shapes.
 */
import type { Service } from "moleculer";
import type { EventLine } from "../../contracts/events";
import type { ItemRequest } from "../../contracts/items";
import type { PricedLine, Quote } from "../../contracts/pricing";
import type { DbMethods } from "../../platform/db.mixin";
import type { OutboxMethods } from "../../platform/outbox.mixin";
import type { CheckoutMethods } from "./checkout";
import type { OrderStatus, TimelineEntry } from "./lifecycle";
import type { SagaMethods } from "./saga";

export interface PaymentSummary {
	status: string;
	failureCode?: string;
	failureMessage?: string;
	card?: { brand: string; last4: string };
}

/** The stored order. */
export interface OrderDoc extends Quote {
	_id: unknown;
	userId: string;
	status: OrderStatus;
	timeline: TimelineEntry[];
	paymentMethod: string;
	payment?: PaymentSummary;
	invoiceNumber?: string;
	fromCart?: boolean;
	paidAt?: Date;
	cancelledAt?: Date;
	refunded?: number;
	/** `<userId>:<Idempotency-Key>` of the request that created it, while the key holds it. */
	idempotencyKey?: string;
	requestHash?: string;
	createdAt: Date;
	updatedAt: Date;
}

/** An order as the API answers it. */
export interface Order extends Omit<Quote, "discountCode"> {
	id: string;
	userId: string;
	discountCode?: string;
	status: OrderStatus;
	timeline: TimelineEntry[];
	invoiceNumber?: string;
	payment?: PaymentSummary;
	createdAt: Date;
	updatedAt: Date;
}

/** The orders service as its own modules see it. */
export type OrdersThis = Service &
	DbMethods &
	OutboxMethods &
	CheckoutMethods &
	SagaMethods & { recoveryTimer?: NodeJS.Timeout };

/** An order's lines as stock moves see them. */
export const stockLines = (order: { items: PricedLine[] }): ItemRequest[] =>
	order.items.map(({ productId, quantity }) => ({ productId, quantity }));

/** An order's lines as its events carry them. */
export const eventLines = (order: { items: PricedLine[] }): EventLine[] =>
	order.items.map(({ productId, sku, name, quantity, unitPrice, lineTotal }) => ({
		productId,
		sku,
		name,
		quantity,
		unitPrice,
		lineTotal,
	}));
