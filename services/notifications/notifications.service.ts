/**
 * notifications: tells people what happened, by email, SMS and push.
 *
 * It consumes domain events (contracts/events.ts) and sends each recipient one
 * message per channel of their preferences, from the templates in
 * services/notifications/templates.ts, through the providers in services/notifications/providers.ts.
 *
 * Every message is a document of its own, keyed by (event id, channel,
 * recipient) under a unique index, with its status and attempts. That makes
 * a redelivered event harmless: a message already `sent` (or `skipped`) is
 * left alone, a `pending` or `failed` one is attempted again, and one that
 * another delivery is `sending` is left to it (until its lease runs out). The
 * delivery that records a message records it already claimed (`sending`), so a
 * message costs two writes: recorded and claimed, then sent (or failed). When any
 * message of an event fails, the handler throws after trying the others, so
 * the transport redelivers the event later (with NATS; dead letters after
 * that) and only the failed messages go out again.
 */
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import { CONSUMER } from "../../platform/channels";
import { config } from "../../platform/config";
import { isNotFound } from "../../platform/errors";
import { countMetric } from "../../platform/metrics";
import { EVENT_VERSION, isDomainEvent, type DomainEvent, type EventType } from "../../contracts/events";
import { CHANNELS, createProviders, type Channel, type Providers } from "./providers";
import {
	lowStock,
	orderCancelled,
	orderConfirmation,
	partFor,
	paymentFailed,
	welcome,
	type Part,
	type Rendered,
	type TemplateName,
} from "./templates";
import type { ShopContext } from "../../contracts/context";
import { pageParams } from "../../platform/params";

/**
 * `pending`: not sent yet; `sending`: a delivery is sending it (under a lease, see `attempt`);
 * `skipped`: the channel has no address (SMS without a phone).
 */
export type NotificationStatus = "pending" | "sending" | "sent" | "failed" | "skipped";

/** How long a delivery may take to send one message before another delivery may take it over. */
const SEND_LEASE_MS = 60_000;

/** A user as `users.get` and `users.admins` answer. */
export interface Recipient {
	id: string;
	name: string;
	email: string;
	phone?: string;
	preferences?: { channels?: string[] };
}

interface NotificationDoc {
	/** `<event id>:<channel>:<recipient id>`, unique. */
	key: string;
	eventId: string;
	eventType: EventType;
	template: TemplateName;
	/** The recipient. */
	userId: string;
	channel: Channel;
	/** Email address, phone number or (push) user id; null when skipped. */
	to: string | null;
	subject: string | null;
	body: string;
	status: NotificationStatus;
	attempts: number;
	/** Why a message was skipped. */
	reason?: string;
	/** The last send error, short. */
	lastError?: string;
	/** While `sending`: until when the delivery that sends it holds it. */
	leaseUntil?: Date;
	createdAt: Date;
	sentAt?: Date;
	updatedAt: Date;
}

interface NotificationsMethods extends DbMethods {
	providers: Providers;
	customer(userId: string): Promise<Recipient[]>;
	admins(): Promise<Recipient[]>;
	notify(
		event: DomainEvent,
		template: TemplateName,
		recipients: Recipient[],
		render: (name: string) => Rendered,
	): Promise<void>;
	record(
		event: DomainEvent,
		template: TemplateName,
		recipient: Recipient,
		channel: Channel,
		part: Part,
	): Promise<{ doc: NotificationDoc; claimed: boolean }>;
	attempt(doc: NotificationDoc): Promise<string | null>;
	send(doc: NotificationDoc, attempt: number): Promise<string | null>;
}

/** What the service reads of its settings (moleculer-db reads `fields`). */
interface NotificationsSettings extends ServiceSettingSchema {
	fields: string[];
	smtpUrl: string | undefined;
	mailFrom: string;
}

type NotificationsThis = Service<NotificationsSettings> & NotificationsMethods;

const LAST_ERROR_MAX = 200;

/** The event in `payload`, or a clear error (the transport retries, then dead-letters it for an admin). */
function readEvent<T extends EventType>(payload: unknown, type: T): DomainEvent<T> {
	if (!isDomainEvent(payload, type)) {
		throw new Error(`Unreadable '${type}' message: not a version ${EVENT_VERSION} domain event of that type`);
	}
	return payload;
}

/** The recipient's channels, by their preferences (email when they have none). */
function channelsOf(recipient: Recipient): Channel[] {
	const wanted = recipient.preferences?.channels ?? ["email"];
	return CHANNELS.filter(channel => wanted.includes(channel));
}

/** Where a channel reaches the recipient, or null (no phone number for SMS). */
function addressOf(recipient: Recipient, channel: Channel): string | null {
	if (channel === "email") return recipient.email;
	if (channel === "sms") return recipient.phone || null;
	return recipient.id;
}

/** An error's message, one line and short (never a stack). */
function shortError(err: unknown): string {
	const message = String((err as Error)?.message ?? err)
		.replace(/\s+/g, " ")
		.trim();
	return message.length > LAST_ERROR_MAX ? `${message.slice(0, LAST_ERROR_MAX - 1)}…` : message;
}

const NotificationsService: ServiceSchema<NotificationsSettings, object, object, NotificationsThis> = {
	name: "notifications",

	mixins: [
		DbMixin({
			collection: "notifications",
			schema: {
				key: String,
				eventId: String,
				eventType: String,
				template: String,
				userId: String,
				channel: String,
				to: String,
				subject: String,
				body: String,
				status: String,
				attempts: Number,
				leaseUntil: Date,
				reason: String,
				lastError: String,
				createdAt: Date,
				sentAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "key", unique: true }, { field: "userId" }],
		}),
	],

	settings: {
		fields: [
			"id",
			"template",
			"channel",
			"to",
			"subject",
			"body",
			"status",
			"reason",
			"attempts",
			"createdAt",
			"sentAt",
		],
		/** SMTP server for email (`smtp://user:pass@host:port`); without one, emails are only logged. */
		smtpUrl: config.notifications.smtpUrl,
		mailFrom: config.notifications.mailFrom,
		/** The SMTP URL may hold a password: never published to other nodes. */
		$secureSettings: ["smtpUrl"],
	},

	actions: {
		/** The signed-in user's own notifications, newest first, a page at a time. */
		list: {
			auth: "user",
			params: { $$strict: true, ...pageParams },
			handler(ctx: ShopContext<{ page: number; pageSize: number }>) {
				const { page, pageSize } = ctx.params;
				return this.listPage(ctx, {
					query: { userId: ctx.meta.user!.id },
					sort: ["-createdAt", "-_id"],
					page,
					pageSize,
				});
			},
		},
	},

	channels: {
		"user.registered": {
			...CONSUMER,
			async handler(this: NotificationsThis, payload: unknown) {
				const event = readEvent(payload, "user.registered");
				await this.notify(event, "welcome", await this.customer(event.data.userId), name => welcome(name));
			},
		},

		"order.paid": {
			...CONSUMER,
			async handler(this: NotificationsThis, payload: unknown) {
				const event = readEvent(payload, "order.paid");
				await this.notify(event, "order_confirmation", await this.customer(event.data.userId), name =>
					orderConfirmation(name, event.data),
				);
			},
		},

		"order.payment_failed": {
			...CONSUMER,
			async handler(this: NotificationsThis, payload: unknown) {
				const event = readEvent(payload, "order.payment_failed");
				await this.notify(event, "payment_failed", await this.customer(event.data.userId), name =>
					paymentFailed(name, event.data),
				);
			},
		},

		"order.cancelled": {
			...CONSUMER,
			async handler(this: NotificationsThis, payload: unknown) {
				const event = readEvent(payload, "order.cancelled");
				await this.notify(event, "order_cancelled", await this.customer(event.data.userId), name =>
					orderCancelled(name, event.data),
				);
			},
		},

		"stock.low": {
			...CONSUMER,
			async handler(this: NotificationsThis, payload: unknown) {
				const event = readEvent(payload, "stock.low");
				await this.notify(event, "low_stock", await this.admins(), name => lowStock(name, event.data));
			},
		},
	},

	methods: {
		/**
		 * The customer an event is about, or none when the account is gone. Read
		 * past the cache, so that preferences changed a moment ago count.
		 */
		async customer(userId: string): Promise<Recipient[]> {
			try {
				return [
					await this.broker.call<Recipient, { id: string }>(
						"users.get",
						{ id: userId },
						{ meta: { $cache: false } },
					),
				];
			} catch (err) {
				if (!isNotFound(err)) throw err;
				this.logger.info(`User ${userId} is gone: nothing to notify.`);
				return [];
			}
		},

		admins(): Promise<Recipient[]> {
			return this.broker.call<Recipient[], object>("users.admins", {});
		},

		/**
		 * Record and send the message of every recipient on each of their channels
		 * (those not sent before). Throws, once all were tried, if any failed.
		 */
		async notify(
			event: DomainEvent,
			template: TemplateName,
			recipients: Recipient[],
			render: (name: string) => Rendered,
		) {
			const messages = recipients.flatMap(recipient => {
				const rendered = render(recipient.name);
				return channelsOf(recipient).map(channel => ({ recipient, channel, part: partFor(rendered, channel) }));
			});
			const failures = await Promise.all(
				messages.map(async ({ recipient, channel, part }) => {
					const { doc, claimed } = await this.record(event, template, recipient, channel, part);
					const error = claimed ? await this.send(doc, 1) : await this.attempt(doc);
					return error && `${channel} to user ${recipient.id}: ${error}`;
				}),
			);
			const failed = failures.filter(Boolean);
			if (failed.length) {
				throw new Error(
					`${failed.length} of ${messages.length} notifications of ${event.type} event ${event.id} failed (${failed.join("; ")})`,
				);
			}
		},

		/**
		 * The message document of (event, channel, recipient): the one recorded before, or a new one. A new
		 * message with an address is recorded claimed by this delivery (`sending`, its first attempt, under a
		 * lease, as `attempt` would claim it): `claimed` says this delivery is the one to send it.
		 */
		async record(event: DomainEvent, template: TemplateName, recipient: Recipient, channel: Channel, part: Part) {
			const key = `${event.id}:${channel}:${recipient.id}`;
			const existing = await this.adapter.findOne({ key });
			if (existing) return { doc: existing as unknown as NotificationDoc, claimed: false };
			const to = addressOf(recipient, channel);
			const now = new Date();
			const doc: NotificationDoc = {
				key,
				eventId: event.id,
				eventType: event.type,
				template,
				userId: recipient.id,
				channel,
				to,
				...part,
				...(to
					? { status: "sending", attempts: 1, leaseUntil: new Date(now.getTime() + SEND_LEASE_MS) }
					: { status: "skipped", attempts: 0, reason: "No phone number on the account" }),
				createdAt: now,
				updatedAt: now,
			};
			// A concurrent delivery of the same event may have recorded it first: then that one sends it.
			const { doc: stored, created } = await this.insertOrGet(doc, { key });
			if (created && !to) countMetric(this.broker, "notificationsSent", { channel, outcome: "skipped" });
			return { doc: stored as NotificationDoc, claimed: created && !!to };
		},

		/**
		 * Send a pending or failed message and record the outcome; the error's text if
		 * it was not sent. A delivery claims the message (`sending`, with a lease) before
		 * it sends: another delivery of the same event leaves it alone — and fails, to
		 * look again later — until it is sent, or the lease ran out (its sender died).
		 */
		async attempt(doc: NotificationDoc): Promise<string | null> {
			const now = new Date();
			const leaseOver = doc.status === "sending" && new Date(doc.leaseUntil!).getTime() < now.getTime();
			if (doc.status === "sending" && !leaseOver) return "another delivery is sending it";
			if (doc.status !== "pending" && doc.status !== "failed" && !leaseOver) return null;
			const { key, status, attempts } = doc;
			const claimed = await this.adapter.updateMany(
				{ key, status, attempts },
				{
					$inc: { attempts: 1 },
					$set: { status: "sending", leaseUntil: new Date(now.getTime() + SEND_LEASE_MS), updatedAt: now },
				},
			);
			if (!claimed) return "another delivery is sending it";
			return this.send(doc, attempts + 1);
		},

		/** Send a message this delivery claimed and record the outcome; the error's text if it was not sent. */
		async send(doc: NotificationDoc, attempt: number): Promise<string | null> {
			const { key } = doc;
			try {
				await this.providers[doc.channel].send({ to: doc.to!, subject: doc.subject, body: doc.body });
			} catch (err) {
				const lastError = shortError(err);
				this.logger.warn(
					`Sending ${doc.template} by ${doc.channel} (${key}) failed, attempt ${attempt}: ${lastError}`,
				);
				await this.adapter.updateMany(
					{ key },
					{ $set: { status: "failed", lastError, updatedAt: new Date() }, $unset: { leaseUntil: true } },
				);
				countMetric(this.broker, "notificationsSent", { channel: doc.channel, outcome: "failed" });
				return lastError;
			}
			countMetric(this.broker, "notificationsSent", { channel: doc.channel, outcome: "sent" });
			const sentAt = new Date();
			await this.adapter.updateMany(
				{ key },
				{ $set: { status: "sent", sentAt, updatedAt: sentAt }, $unset: { leaseUntil: true } },
			);
			return null;
		},
	},

	created() {
		this.providers = createProviders({
			smtpUrl: this.settings.smtpUrl,
			mailFrom: this.settings.mailFrom,
			logger: this.logger,
		});
	},

	stopped() {
		for (const provider of Object.values(this.providers)) provider.close?.();
	},
};

export default NotificationsService;
