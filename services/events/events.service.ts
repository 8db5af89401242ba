/**
 * events: the admin's view of domain-event delivery — the dead-letter queue.
 *
 * In NATS mode a message whose handler kept failing ends in the DEAD_LETTERS
 * stream with the error that stopped it (platform/channels.ts). Admins list those
 * messages and redrive one: it is published to its channel again (every
 * consumer group receives it; those that handled the event before skip it by
 * its id) and removed from the queue. In the default mode there is no
 * dead-letter queue: the list is empty and says so, a redrive is a 409.
 */
import type { ServiceSchema } from "moleculer";
import { durableEvents, type DeadLetter, type JetStreamAdapter } from "../../platform/channels";
import { conflict, notFound } from "../../contracts/errors";
import type { ShopContext } from "../../contracts/context";

const seqParam = { type: "number", integer: true, min: 1, convert: true } as const;

const NO_QUEUE =
	"There is no dead-letter queue without durable events: run with TRANSPORTER=nats://... (NATS with JetStream)";

const EventsService: ServiceSchema = {
	name: "events",

	actions: {
		/** The oldest dead letters: channel, consumer group, error, deliveries and the event. */
		deadLetters: {
			auth: "admin",
			params: {
				$$strict: true,
				limit: { type: "number", integer: true, min: 1, max: 100, default: 20, optional: true, convert: true },
			},
			async handler(
				ctx: ShopContext<{ limit: number }>,
			): Promise<{ durable: boolean; rows: DeadLetter[]; message?: string }> {
				if (!durableEvents()) return { durable: false, rows: [], message: NO_QUEUE };
				return {
					durable: true,
					rows: await (this.broker.channelAdapter as JetStreamAdapter).listDeadLetters(ctx.params.limit),
				};
			},
		},

		/** Publish a dead letter to its channel again and remove it from the queue. */
		redrive: {
			auth: "admin",
			retryPolicy: { enabled: false },
			params: { $$strict: true, seq: seqParam },
			async handler(ctx: ShopContext<{ seq: number }>): Promise<DeadLetter> {
				if (!durableEvents()) throw conflict(NO_QUEUE, "NO_DEAD_LETTER_QUEUE");
				try {
					const letter = await (this.broker.channelAdapter as JetStreamAdapter).redrive(ctx.params.seq);
					this.logger.info(`Redrove dead letter ${ctx.params.seq} to '${letter.channel}'.`);
					return letter;
				} catch (err) {
					const { code, message } = err as { code?: string; message?: string };
					if (code === "404" || /no message found/i.test(message ?? ""))
						throw notFound("Dead letter", String(ctx.params.seq));
					throw err;
				}
			},
		},
	},
};

export default EventsService;
