/**
 * moleshop's domain events: their names, payloads and envelope.
 *
 * Every event travels as a `DomainEvent`: a unique `id` (consumers
 * deduplicate by it), the `type` (also the channel name), the payload
 * `version`, when it happened and its `data`. Events are published through
 * `@moleculer/channels` (JetStream in NATS mode, Moleculer's own balanced
 * events otherwise); state changes write them into an outbox first
 * (platform/outbox.mixin.ts), so a crash never separates a change from its event.
 */
import { randomUUID } from "node:crypto";

/** Version of every payload below; bump it (and keep consumers reading the old one) when a payload changes shape. */
export const EVENT_VERSION = 1;

/** One ordered line as events carry it (integer cents). */
export interface EventLine {
	productId: string;
	sku: string;
	name: string;
	quantity: number;
	unitPrice: number;
	lineTotal: number;
}

/** The views of one product on one UTC day ("YYYY-MM-DD"), as counted by one counter so far. */
export interface ViewCount {
	productId: string;
	day: string;
	views: number;
}

/** Payload of each event type. */
export interface EventPayloads {
	"user.registered": { userId: string };
	/**
	 * One view of a product (`userId` null for an anonymous visitor). Published by
	 * nodes of earlier versions, one event per view; analytics still reads it.
	 * @deprecated views are counted in memory and published as `product.views`.
	 */
	"product.viewed": { productId: string; userId: string | null };
	/**
	 * Views counted by one products process (`counter`, new each time a process
	 * starts): per product and UTC day, that counter's running total so far.
	 * Totals, not increments: a consumer keeps the highest total per counter,
	 * product and day, so a redelivered or reordered event changes nothing.
	 */
	"product.views": { counter: string; counts: ViewCount[] };
	/** Lines of a cart changed: each line's new quantity (0 = removed); `clear` empties the cart. */
	"cart.updated": {
		userId: string;
		reason: "set" | "clear" | "checkout";
		lines: Array<{ productId: string; quantity: number }>;
	};
	"order.paid": {
		orderId: string;
		userId: string;
		items: EventLine[];
		subtotal: number;
		discount: number;
		shipping: number;
		tax: number;
		/** What the charge took. */
		total: number;
		currency: string;
		invoiceNumber: string;
		paidAt: string;
	};
	"order.payment_failed": {
		orderId: string;
		userId: string;
		total: number;
		currency: string;
		/** Why: "card_declined", "processing_error", ... */
		reason: string;
	};
	"order.cancelled": {
		orderId: string;
		userId: string;
		items: EventLine[];
		/** What the refund gave back (the whole charge). */
		refunded: number;
		currency: string;
		cancelledAt: string;
	};
	/** Stock of a product went from above the threshold to at or below it. */
	"stock.low": { productId: string; sku: string; name: string; stock: number; threshold: number };
}

export type EventType = keyof EventPayloads;

export const EVENT_TYPES: EventType[] = [
	"user.registered",
	"product.viewed",
	"product.views",
	"cart.updated",
	"order.paid",
	"order.payment_failed",
	"order.cancelled",
	"stock.low",
];

export interface DomainEvent<T extends EventType = EventType> {
	id: string;
	type: T;
	version: number;
	/** ISO 8601 time of the change. */
	occurredAt: string;
	data: EventPayloads[T];
	/** The request that wrote the event (platform/tracing.ts): its handling logs that request id, and is a span of its trace where tracing is on. */
	trace?: EventTrace;
}

/** Where an event was written in a trace: the request id (the trace id), the writing action's span, and the sampling decision. */
export interface EventTrace {
	requestID: string;
	parentID: string;
	sampled: boolean;
}

/** A new event, stamped now (or at `at`, the time of the change it reports). */
export function domainEvent<T extends EventType>(
	type: T,
	data: EventPayloads[T],
	at: Date = new Date(),
): DomainEvent<T> {
	return { id: randomUUID(), type, version: EVENT_VERSION, occurredAt: at.toISOString(), data };
}

/** Whether a received payload is a domain event of `type` that this code can read. */
export function isDomainEvent<T extends EventType>(payload: unknown, type: T): payload is DomainEvent<T> {
	const event = payload as Partial<DomainEvent> | null;
	return (
		!!event &&
		typeof event.id === "string" &&
		event.type === type &&
		event.version === EVENT_VERSION &&
		typeof event.occurredAt === "string" &&
		!!event.data &&
		typeof event.data === "object"
	);
}
