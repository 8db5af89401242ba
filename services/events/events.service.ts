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
import { EVENT_TYPES } from "../../contracts/events";
import { metricsOn, setMetric } from "../../platform/metrics";

const seqParam = { type: "number", integer: true, min: 1, convert: true } as const;

const NO_QUEUE =
	"There is no dead-letter queue without durable events: run with TRANSPORTER=nats://... (NATS with JetStream)";

/** How often the dead-letter gauge is refreshed, and how many dead letters one refresh reads at most. */
const DEPTH_INTERVAL_MS = 15_000;
const DEPTH_LIMIT = 1_000;

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

	methods: {
		/**
		 * moleshop_dead_letters{channel}: the dead letters of each channel (0 for a channel with none, and
		 * always in the default mode, which has no queue), read from the queue every DEPTH_INTERVAL_MS.
		 */
		async measureDeadLetters() {
			const depth = durableEvents()
				? await (this.broker.channelAdapter as JetStreamAdapter).deadLetterDepth(DEPTH_LIMIT)
				: {};
			for (const channel of new Set([...EVENT_TYPES, ...Object.keys(depth)]))
				setMetric(this.broker, "deadLetters", depth[channel] ?? 0, { channel });
		},
	},

	started() {
		if (!metricsOn(this.broker)) return;
		const measure = () =>
			this.measureDeadLetters().catch((err: Error) =>
				this.logger.debug(`Dead letters not measured: ${err.message}`),
			);
		void measure();
		this.depthTimer = setInterval(measure, DEPTH_INTERVAL_MS);
		this.depthTimer.unref();
	},

	stopped() {
		clearInterval(this.depthTimer);
	},
};

export default EventsService;
