/**
 * What notifications say: one function per template, each giving the text
 * for every channel (email: subject and text; SMS: one short text; push:
 * title and body). Amounts come as integer cents and are formatted here.
 */
import type { EventPayloads } from "../../contracts/events";
import type { Channel } from "./providers";

export type TemplateName = "welcome" | "order_confirmation" | "payment_failed" | "order_cancelled" | "low_stock";

/** A template's text for every channel. */
export interface Rendered {
	email: { subject: string; text: string };
	sms: { text: string };
	push: { title: string; body: string };
}

/** A channel's part of a template as it is stored and sent: a subject (email subject, push title; none for SMS) and a body. */
export interface Part {
	subject: string | null;
	body: string;
}

/** Longest SMS text: one 160-character segment. */
const SMS_MAX = 160;
const SHOP = "moleshop";

/** `cents` as money: "$1,234.56" for USD, "1,234.56 EUR" for other currencies. */
export function formatMoney(cents: number, currency: string): string {
	const sign = cents < 0 ? "-" : "";
	const abs = Math.abs(Math.round(cents));
	const amount = `${Math.floor(abs / 100).toLocaleString("en-US")}.${String(abs % 100).padStart(2, "0")}`;
	return currency === "USD" ? `${sign}$${amount}` : `${sign}${amount} ${currency}`;
}

/** The part of `rendered` for `channel`. */
export function partFor(rendered: Rendered, channel: Channel): Part {
	switch (channel) {
		case "email":
			return { subject: rendered.email.subject, body: rendered.email.text };
		case "sms":
			return { subject: null, body: rendered.sms.text };
		case "push":
			return { subject: rendered.push.title, body: rendered.push.body };
	}
}

function sms(text: string): { text: string } {
	return { text: text.length > SMS_MAX ? `${text.slice(0, SMS_MAX - 1)}…` : text };
}

/** A new customer's welcome. */
export function welcome(name: string): Rendered {
	return {
		email: {
			subject: `Welcome to ${SHOP}, ${name}!`,
			text: `Hi ${name},\n\nyour ${SHOP} account is ready. Happy shopping!\n\nThe ${SHOP} team`,
		},
		sms: sms(`${SHOP}: welcome, ${name}! Your account is ready.`),
		push: { title: `Welcome to ${SHOP}`, body: `Hi ${name}, your account is ready.` },
	};
}

/** A paid order: its invoice number, lines and total. */
export function orderConfirmation(name: string, order: EventPayloads["order.paid"]): Rendered {
	const money = (cents: number) => formatMoney(cents, order.currency);
	const total = money(order.total);
	const lines = order.items.map(line => `  ${line.quantity} × ${line.name} (${line.sku})  ${money(line.lineTotal)}`);
	const summary = [
		`  Subtotal  ${money(order.subtotal)}`,
		...(order.discount ? [`  Discount  -${money(order.discount)}`] : []),
		`  Shipping  ${money(order.shipping)}`,
		`  Tax       ${money(order.tax)}`,
		`  Total     ${total}`,
	];
	return {
		email: {
			subject: `Your ${SHOP} order is confirmed (invoice ${order.invoiceNumber})`,
			text: [
				`Hi ${name},`,
				"",
				`thank you for your order. We received your payment of ${total}.`,
				"",
				`Invoice: ${order.invoiceNumber}`,
				`Order:   ${order.orderId}`,
				"",
				...lines,
				"",
				...summary,
				"",
				`The ${SHOP} team`,
			].join("\n"),
		},
		sms: sms(`${SHOP}: payment of ${total} received, invoice ${order.invoiceNumber}. Thank you!`),
		push: { title: "Order confirmed", body: `Invoice ${order.invoiceNumber}: ${total} paid.` },
	};
}

const FAILURE_REASONS: Record<string, string> = {
	card_declined: "your card was declined",
	processing_error: "the payment could not be processed",
};

/** A charge that failed, and why. */
export function paymentFailed(name: string, failure: EventPayloads["order.payment_failed"]): Rendered {
	const total = formatMoney(failure.total, failure.currency);
	const reason = FAILURE_REASONS[failure.reason] ?? failure.reason.replace(/_/g, " ");
	return {
		email: {
			subject: `Payment failed for your ${SHOP} order`,
			text: [
				`Hi ${name},`,
				"",
				`we could not take the payment of ${total} for order ${failure.orderId}: ${reason}.`,
				"Please check your payment details and try again.",
				"",
				`The ${SHOP} team`,
			].join("\n"),
		},
		sms: sms(`${SHOP}: payment of ${total} failed (${reason}). Please try again.`),
		push: { title: "Payment failed", body: `The payment of ${total} failed: ${reason}.` },
	};
}

/** A cancelled order, and what was refunded. */
export function orderCancelled(name: string, cancellation: EventPayloads["order.cancelled"]): Rendered {
	const refunded = formatMoney(cancellation.refunded, cancellation.currency);
	const refund =
		cancellation.refunded > 0
			? `${refunded} was refunded to your payment method`
			: "nothing was charged, so there is nothing to refund";
	return {
		email: {
			subject: `Your ${SHOP} order was cancelled`,
			text: [
				`Hi ${name},`,
				"",
				`your order ${cancellation.orderId} was cancelled; ${refund}.`,
				"",
				`The ${SHOP} team`,
			].join("\n"),
		},
		sms: sms(`${SHOP}: your order was cancelled; ${refund}.`),
		push: {
			title: "Order cancelled",
			body: cancellation.refunded > 0 ? `${refunded} refunded.` : "Your order was cancelled.",
		},
	};
}

/** For admins: a product's stock fell to or below its threshold. */
export function lowStock(name: string, product: EventPayloads["stock.low"]): Rendered {
	const left = `${product.stock} left`;
	return {
		email: {
			subject: `Low stock: ${product.sku} (${left})`,
			text: [
				`Hi ${name},`,
				"",
				`stock of ${product.name} (${product.sku}, product ${product.productId}) is down to ${product.stock}, ` +
					`at or below the threshold of ${product.threshold}. Time to restock.`,
			].join("\n"),
		},
		sms: sms(`${SHOP}: low stock of ${product.sku}, ${left}.`),
		push: { title: "Low stock", body: `${product.name} (${product.sku}): ${left}.` },
	};
}
