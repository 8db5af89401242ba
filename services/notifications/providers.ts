/**
 * How notifications leave: one provider per channel, all with the same
 * interface. Email goes over SMTP (nodemailer) when an SMTP URL is configured;
 * otherwise, and for SMS and push (no real gateways yet), a provider only logs
 * one short line: the channel, the masked recipient and the subject.
 */
import type { Logger } from "moleculer";
import nodemailer, { type Mail } from "nodemailer";

export type Channel = "email" | "sms" | "push";
export const CHANNELS: Channel[] = ["email", "sms", "push"];

/** One message to one recipient: an email address, a phone number (E.164) or, for push, a user id. */
export interface OutgoingMessage {
	to: string;
	subject: string | null;
	body: string;
}

/** Sends the messages of one channel. `send` resolves once the message was accepted and rejects if it was not. */
export interface Provider {
	send(message: OutgoingMessage): Promise<void>;
	/** Release connections, if any. */
	close?(): void;
}

export type Providers = Record<Channel, Provider>;

/** Give up on an SMTP server that does not answer well before a channel message's redelivery is due. */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 };

/** A recipient for logs: "j***@example.com", "***5678". */
export function maskRecipient(to: string): string {
	const at = to.lastIndexOf("@");
	if (at > 0) return `${to[0]}***${to.slice(at)}`;
	return `***${to.slice(-4)}`;
}

/** Email over SMTP (`smtp://user:pass@host:port`, `smtps://...`). */
export class SmtpEmailProvider implements Provider {
	private readonly transport: Mail;

	constructor(
		smtpUrl: string,
		private readonly from: string,
	) {
		this.transport = nodemailer.createTransport({ url: smtpUrl, ...SMTP_TIMEOUTS });
	}

	async send(message: OutgoingMessage): Promise<void> {
		await this.transport.sendMail({
			from: this.from,
			to: message.to,
			subject: message.subject ?? "",
			text: message.body,
		});
	}

	close(): void {
		this.transport.close();
	}
}

/** Logs instead of sending. */
class LogProvider implements Provider {
	constructor(
		private readonly channel: Channel,
		private readonly logger: Logger,
	) {}

	async send(message: OutgoingMessage): Promise<void> {
		const about = message.subject ?? `${message.body.length} characters`;
		this.logger.info(`${this.channel} to ${maskRecipient(message.to)}: ${about}`);
	}
}

export class LogEmailProvider extends LogProvider {
	constructor(logger: Logger) {
		super("email", logger);
	}
}

export class LogSmsProvider extends LogProvider {
	constructor(logger: Logger) {
		super("sms", logger);
	}
}

export class LogPushProvider extends LogProvider {
	constructor(logger: Logger) {
		super("push", logger);
	}
}

/** The provider of every channel: SMTP email with `smtpUrl`, logging otherwise. */
export function createProviders(opts: { smtpUrl?: string; mailFrom: string; logger: Logger }): Providers {
	return {
		email: opts.smtpUrl ? new SmtpEmailProvider(opts.smtpUrl, opts.mailFrom) : new LogEmailProvider(opts.logger),
		sms: new LogSmsProvider(opts.logger),
		push: new LogPushProvider(opts.logger),
	};
}
