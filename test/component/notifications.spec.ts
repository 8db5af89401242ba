import type { ServiceBroker } from "moleculer";
import type { ParsedMail } from "mailparser";
import { domainEvent, type DomainEvent } from "../../contracts/events";
import NotificationsService from "../../services/notifications/notifications.service";
import UsersService from "../../services/users/users.service";
import { startBroker } from "../helpers/shop";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp";

/**
 * The service sends its email to a real SMTP server on this machine, which
 * parses every mail it accepts into `received` and refuses the mails that
 * `refuse` picks (a failing provider). SMS and push go to the logging providers.
 *
 * `users.register` may publish `user.registered` itself, so a new customer can
 * get a welcome of its own at any moment: the tests look only at the messages
 * of the events they deliver, and at mails by subject.
 */
let broker: ServiceBroker;
let smtp: TestSmtpServer;

const as = (id: string) => ({ meta: { user: { id, role: "customer" } } });
const CHANNEL_ORDER = ["email", "sms", "push"];

beforeAll(async () => {
	smtp = await startSmtpServer();
	broker = await startBroker([
		UsersService,
		{ ...NotificationsService, settings: { ...NotificationsService.settings, smtpUrl: smtp.url } },
	]);
});

afterAll(async () => {
	await broker?.stop();
	await smtp.close();
});

/** Deliver an event to the consumer the way the transport does (resolves or rejects with the handler). */
function deliver(event: unknown, type = (event as DomainEvent).type): Promise<void> {
	return (broker.getLocalService("notifications") as any).emitLocalChannelHandler(type, event);
}

/** The stored messages of an event, as plain documents, email first. */
async function messagesOf(event: DomainEvent): Promise<any[]> {
	const docs = await (broker.getLocalService("notifications") as any).adapter.find({ query: { eventId: event.id } });
	return docs
		.map((doc: any) => (doc.toObject ? doc.toObject() : doc))
		.sort(
			(a: any, b: any) =>
				CHANNEL_ORDER.indexOf(a.channel) - CHANNEL_ORDER.indexOf(b.channel) || a.userId.localeCompare(b.userId),
		);
}

const isTo = (mail: ParsedMail, address: string) =>
	[mail.to].flat().some(to => to?.value.some(a => a.address === address));

/** Mails the SMTP server accepted for `address` with `subject`. */
function mailsTo(address: string, subject: string): ParsedMail[] {
	return smtp.received.filter(mail => isTo(mail, address) && mail.subject === subject);
}

const CONFIRMATION = "Your moleshop order is confirmed (invoice INV-2025-000042)";
const CANCELLATION = "Your moleshop order was cancelled";

let customers = 0;

/** A new customer with the given contact preferences (email only unless told). */
async function customer(update?: { phone?: string; preferences?: { channels: string[] } }): Promise<any> {
	const email = `ada${++customers}-${process.pid}@moleshop.test`;
	const { user } = await broker.call<any, any>("users.register", {
		name: "Ada",
		email,
		password: "correct horse battery",
	});
	return update ? broker.call("users.updateMe", update, as(user.id)) : user;
}

const paid = (userId: string) =>
	domainEvent("order.paid", {
		orderId: "order-1",
		userId,
		items: [{ productId: "p1", sku: "MUG-1", name: "Mug", quantity: 2, unitPrice: 617, lineTotal: 1234 }],
		subtotal: 1234,
		discount: 0,
		shipping: 500,
		tax: 0,
		total: 1734,
		currency: "USD",
		invoiceNumber: "INV-2025-000042",
		paidAt: new Date().toISOString(),
	});

const cancelled = (userId: string) =>
	domainEvent("order.cancelled", {
		orderId: "order-2",
		userId,
		items: [],
		refunded: 1999,
		currency: "EUR",
		cancelledAt: new Date().toISOString(),
	});

describe("notifications", () => {
	it("welcomes a new customer by email only, by default", async () => {
		const user = await customer();
		const event = domainEvent("user.registered", { userId: user.id });
		await deliver(event);

		expect(await messagesOf(event)).toEqual([
			expect.objectContaining({
				template: "welcome",
				channel: "email",
				to: user.email,
				userId: user.id,
				status: "sent",
				attempts: 1,
				sentAt: expect.any(Date),
			}),
		]);
		const [mail] = mailsTo(user.email, "Welcome to moleshop, Ada!");
		expect(mail.text).toContain("your moleshop account is ready");
		expect(mail.from?.text).toContain("moleshop");
	});

	it("sends on every channel the user chose: email, SMS and push", async () => {
		const user = await customer({ phone: "+4915112345678", preferences: { channels: ["email", "sms", "push"] } });
		const event = domainEvent("order.payment_failed", {
			orderId: "order-3",
			userId: user.id,
			total: 4200,
			currency: "USD",
			reason: "card_declined",
		});
		await deliver(event);

		const messages = await messagesOf(event);
		expect(messages).toEqual([
			expect.objectContaining({
				channel: "email",
				to: user.email,
				status: "sent",
				subject: "Payment failed for your moleshop order",
			}),
			expect.objectContaining({ channel: "sms", to: "+4915112345678", status: "sent", subject: null }),
			expect.objectContaining({ channel: "push", to: user.id, status: "sent", subject: "Payment failed" }),
		]);
		expect(messages.map(m => m.template)).toEqual(["payment_failed", "payment_failed", "payment_failed"]);
		expect(messages[1].body).toBe("moleshop: payment of $42.00 failed (your card was declined). Please try again.");
		expect(mailsTo(user.email, "Payment failed for your moleshop order")).toHaveLength(1);
	});

	it("skips SMS, with a reason, when the account has no phone number", async () => {
		const user = await customer({ preferences: { channels: ["email", "sms"] } });
		const event = cancelled(user.id);
		await deliver(event);

		expect(await messagesOf(event)).toEqual([
			expect.objectContaining({ channel: "email", status: "sent", attempts: 1 }),
			expect.objectContaining({
				channel: "sms",
				to: null,
				status: "skipped",
				attempts: 0,
				reason: "No phone number on the account",
			}),
		]);
		expect(mailsTo(user.email, CANCELLATION)[0].text).toContain("19.99 EUR was refunded");
	});

	it("emails an order confirmation with the invoice number and total over SMTP", async () => {
		const user = await customer({ preferences: { channels: ["email", "push"] } });
		await deliver(paid(user.id));

		const mails = mailsTo(user.email, CONFIRMATION);
		expect(mails).toHaveLength(1);
		expect(mails[0].text).toContain("Invoice: INV-2025-000042");
		expect(mails[0].text).toContain("Total     $17.34");
		expect(mails[0].text).toContain("2 × Mug (MUG-1)  $12.34");
		const list = await broker.call<any, any>("notifications.list", {}, as(user.id));
		// The welcome and the confirmation may carry the same millisecond: pick the confirmation by its template.
		const push = list.rows.find((m: any) => m.channel === "push" && m.template === "order_confirmation");
		expect(push).toMatchObject({
			subject: "Order confirmed",
			body: "Invoice INV-2025-000042: $17.34 paid.",
		});
	});

	it("sends a redelivered event only once, also when two deliveries overlap", async () => {
		const user = await customer();
		const event = paid(user.id);
		await deliver(event);
		await deliver(event);
		await Promise.all([deliver(event), deliver(event)]);
		// Overlapping deliveries: one sends; the others fail ("another delivery is sending it") so the transport brings them back later.

		expect(await messagesOf(event)).toEqual([expect.objectContaining({ status: "sent", attempts: 1 })]);
		expect(mailsTo(user.email, CONFIRMATION)).toHaveLength(1);

		const fresh = await customer();
		const overlapping = paid(fresh.id);
		const outcomes = await Promise.allSettled([deliver(overlapping), deliver(overlapping), deliver(overlapping)]);
		expect(outcomes.filter(o => o.status === "fulfilled").length).toBeGreaterThanOrEqual(1);
		for (const o of outcomes)
			if (o.status === "rejected") expect(String(o.reason)).toContain("another delivery is sending it");
		await deliver(overlapping); // the redelivery of a loser finds it sent
		expect(await messagesOf(overlapping)).toEqual([expect.objectContaining({ status: "sent", attempts: 1 })]);
		expect(mailsTo(fresh.email, CONFIRMATION)).toHaveLength(1);
	});

	it("records a failed send and throws; the next delivery sends only what failed", async () => {
		const user = await customer({ preferences: { channels: ["email", "push"] } });
		const event = cancelled(user.id);
		smtp.refuse = mail => isTo(mail, user.email) && mail.subject === CANCELLATION;
		try {
			await expect(deliver(event)).rejects.toThrow(
				/1 of 2 notifications of order\.cancelled event .* failed \(email to user/,
			);
		} finally {
			smtp.refuse = null;
		}
		const [email, push] = await messagesOf(event);
		expect(email).toMatchObject({
			status: "failed",
			attempts: 1,
			lastError: expect.stringMatching(/550 Mailbox unavailable/),
		});
		expect(email.lastError.length).toBeLessThanOrEqual(200);
		expect(email.lastError).not.toMatch(/\n|at .*\.js/);
		expect(push).toMatchObject({ status: "sent", attempts: 1 });
		expect(mailsTo(user.email, CANCELLATION)).toHaveLength(0);

		await deliver(event);
		const [emailAfter, pushAfter] = await messagesOf(event);
		expect(emailAfter).toMatchObject({ status: "sent", attempts: 2, sentAt: expect.any(Date) });
		expect(pushAfter).toMatchObject({ status: "sent", attempts: 1 });
		expect(mailsTo(user.email, CANCELLATION)).toHaveLength(1);
	});

	it("tells the admins about low stock", async () => {
		const admins = await broker.call<any[], object>("users.admins", {});
		expect(admins.map(a => a.email)).toEqual(["admin@moleshop.test"]);
		const event = domainEvent("stock.low", {
			productId: "p9",
			sku: "LAMP-9",
			name: "Lamp",
			stock: 3,
			threshold: 5,
		});
		await deliver(event);

		expect(await messagesOf(event)).toEqual([
			expect.objectContaining({
				template: "low_stock",
				userId: admins[0].id,
				to: "admin@moleshop.test",
				status: "sent",
			}),
		]);
		expect(mailsTo("admin@moleshop.test", "Low stock: LAMP-9 (3 left)")).toHaveLength(1);
	});

	it("records nothing for an account that is gone", async () => {
		const event = paid("nosuchuser000000");
		await expect(deliver(event)).resolves.toBeUndefined();
		expect(await messagesOf(event)).toEqual([]);
	});

	it("throws a clear error for a payload that is not a readable event", async () => {
		await expect(deliver({ hello: "world" }, "order.paid")).rejects.toThrow("Unreadable 'order.paid' message");
		await expect(deliver({ ...paid("someone"), version: 99 })).rejects.toThrow(/not a version 1 domain event/);
	});

	it("lists only the caller's own notifications, newest first", async () => {
		const ada = await customer({ phone: "+4915112345679", preferences: { channels: ["email", "sms"] } });
		const bob = await customer();
		await deliver(paid(ada.id));
		await new Promise(resolve => setTimeout(resolve, 10)); // the cancellation's messages are strictly newer
		await deliver(cancelled(ada.id));
		await deliver(paid(bob.id));

		const list = await broker.call<any, any>("notifications.list", { pageSize: 100 }, as(ada.id));
		expect(list).toMatchObject({ page: 1, pageSize: 100, total: list.rows.length });
		expect(list.rows.every((m: any) => m.to === ada.email || m.to === ada.phone)).toBe(true);
		const ours = list.rows.filter((m: any) => m.template !== "welcome"); // and maybe the welcome of the sign-up
		expect(ours.map((m: any) => m.template)).toEqual([
			"order_cancelled",
			"order_cancelled",
			"order_confirmation",
			"order_confirmation",
		]);
		const times = list.rows.map((m: any) => new Date(m.createdAt).getTime());
		expect(times).toEqual([...times].sort((a, b) => b - a));
		const sent = ours.find((m: any) => m.channel === "email");
		expect(Object.keys(sent).sort()).toEqual([
			"attempts",
			"body",
			"channel",
			"createdAt",
			"id",
			"sentAt",
			"status",
			"subject",
			"template",
			"to",
		]);

		const second = await broker.call<any, any>("notifications.list", { page: 2, pageSize: 1 }, as(ada.id));
		expect(second.rows.map((m: any) => m.id)).toEqual([list.rows[1].id]);
		expect((await broker.call<any, any>("notifications.list", {}, as("nobody"))).rows).toEqual([]);
	});
});
