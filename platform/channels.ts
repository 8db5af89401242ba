/**
 * How domain events travel: `@moleculer/channels`, configured once here.
 *
 * - NATS mode (TRANSPORTER is a NATS URL): JetStream, durable. One stream per
 *   event type (kept EVENT_RETENTION_DAYS; dead letters until redriven), one
 *   durable consumer per consuming service. A failed handler is redelivered with growing delays; after
 *   `maxRetries` deliveries the message moves to the DEAD_LETTERS stream with
 *   the error that stopped it, where an admin can inspect and redrive it, unless
 *   the failure was transient (a dependency not available or timing out): that
 *   message is redelivered until it succeeds.
 * - Default mode: the channels' Fake adapter, i.e. Moleculer's balanced
 *   events over the built-in transporter. Events flow between nodes with no
 *   infrastructure, but there are no redeliveries and no dead letters.
 */
import { Adapters, Middleware as ChannelsMiddleware } from "@moleculer/channels";
import type { Service, ServiceBroker } from "moleculer";
import type { JetStreamManager, JsMsg, StreamInfo } from "nats";
import { config } from "./config";
import { countMetric } from "./metrics";

/** Subject (and, with "." as "_", stream) of dead letters. */
export const DEAD_LETTER_QUEUE = "DEAD_LETTERS";
const EVENT_RETENTION_DAYS = 7;
const NANOS_PER_MS = 1_000_000;
/** Well inside JetStream's default ack wait (30 s). */
const WORKING_INTERVAL_MS = 10_000;
/** Delay before redelivery n (1-based): 1 s, 2 s, 4 s, ... at most 30 s. */
export const redeliveryDelay = (attempt: number) => Math.min(1_000 * 2 ** (attempt - 1), 30_000);

/** Options of every consumer: `channels: { "order.paid": { ...CONSUMER, handler } }`. */
export const CONSUMER = {
	maxRetries: config.events.maxRetries,
	/** Messages a consumer handles at once (handlers are idempotent, so order does not matter). */
	maxInFlight: 10,
	deadLettering: { enabled: true, queueName: DEAD_LETTER_QUEUE },
};

/** A message in the dead-letter queue. */
export interface DeadLetter {
	seq: number;
	channel: string;
	group: string;
	error: string;
	failedAt: string;
	deliveries: number;
	payload: unknown;
}

const streamName = (subject: string) => subject.split(".").join("_");

/**
 * The channels' JetStream adapter with two changes: redeliveries wait
 * (`nak(delay)` instead of an immediate `nak()`), and a message is dead-lettered
 * with its error — or, if even that fails, redelivered later rather than dropped.
 * It also creates every event stream when it connects, so publishing never
 * depends on a consumer having subscribed first (all at once, and only then: a
 * subscription does not ask for its streams again).
 */
// @moleculer/channels ships no types for its adapters: the base class is untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const NatsAdapter = Adapters.NATS as unknown as new (opts: object) => any;

/** A subscribed channel, as the channels middleware hands it to its adapter. */
interface Channel {
	id: string;
	name: string;
	group: string;
	maxRetries: number;
	unsubscribing?: boolean;
	deadLettering: { queueName: string };
	handler(payload: unknown, raw: JsMsg): Promise<void>;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * A failure of the moment, not of the message: a retryable Moleculer error (a service the handler
 * calls is not available, a call timed out), as after a NATS outage, when the consumers resume before
 * the nodes have found each other again. Such a message is redelivered (1 s, 2 s, … every 30 s at
 * most) until it succeeds, however many times; only a message that fails otherwise is dead-lettered
 * after `maxRetries` deliveries.
 */
const isTransient = (error: unknown) => (error as { retryable?: unknown } | null)?.retryable === true;

export class JetStreamAdapter extends NatsAdapter {
	/** The channels whose streams exist before anyone publishes or subscribes. */
	private readonly channelNames: readonly string[];
	/** The streams this connection created, with the default options. */
	private readonly streamsCreated = new Set<string>();

	constructor(opts: object, channelNames: readonly string[]) {
		super(opts);
		this.channelNames = channelNames;
	}

	/** Connect, then create every stream, in parallel: one JetStream request each, on the start path of every node. */
	async connect() {
		await super.connect();
		this.streamsCreated.clear();
		await Promise.all(
			[...this.channelNames, DEAD_LETTER_QUEUE].map(async name => {
				const subject = this.addPrefixTopic(name); // channels are prefixed with the namespace
				// The adapter logs a failure and answers nothing: then a subscription asks again.
				if (await this.createStream(streamName(subject), [subject], {}))
					this.streamsCreated.add(streamName(subject));
			}),
		);
	}

	/**
	 * Dead letters wait for an admin: their stream keeps them until redriven, with no age limit. The
	 * adapter's subscribe asks for the stream of its channel and of the dead letters again, two
	 * requests per consumer; a stream this connection created is not asked for twice.
	 */
	async createStream(name: string, subjects: string[], opts: object) {
		if (this.streamsCreated.has(name) && Object.keys(opts ?? {}).length === 0) return;
		return super.createStream(name, subjects, name === this.deadLetterStream() ? { ...opts, max_age: 0 } : opts);
	}

	createConsumerHandler(chan: Channel) {
		return async (err: Error | null, message: JsMsg | null) => {
			if (chan.unsubscribing || (!err && !message)) return;
			if (err || !message) return this.logger.error(`Consumer of '${chan.name}' failed:`, err);
			this.addChannelActiveMessages(chan.id, [message.seq]);
			if (message.info.redeliveryCount > 1)
				countMetric(this.broker, "eventsRedelivered", { channel: this.unprefixed(chan.name) });
			// Tell JetStream the message is being worked on, so a slow handler is not redelivered meanwhile.
			message.working();
			const keepAlive = setInterval(() => message.working(), WORKING_INTERVAL_MS);
			try {
				await chan.handler(this.serializer.deserialize(Buffer.from(message.data)), message);
				message.ack();
			} catch (error) {
				this.metricsIncrement("moleculer.channels.messages.errors.total", chan);
				const deliveries = message.info.redeliveryCount;
				if (deliveries < chan.maxRetries || isTransient(error)) {
					this.logger.warn(
						`'${chan.name}' handler of ${chan.group} failed (delivery ${deliveries}), retrying: ${messageOf(error)}`,
					);
					message.nak(redeliveryDelay(deliveries));
				} else {
					await this.deadLetter(chan, message, error);
				}
			} finally {
				clearInterval(keepAlive);
				this.removeChannelActiveMessages(chan.id, [message.seq]);
			}
		};
	}

	/** Move a message to the dead-letter queue with why and where it failed; ack it only once it is there. */
	async deadLetter(chan: Channel, message: JsMsg, error: unknown) {
		try {
			await this.publish(chan.deadLettering.queueName, message.data, {
				raw: true,
				headers: {
					"x-original-channel": chan.name,
					"x-original-group": chan.group,
					"x-error": messageOf(error).slice(0, 500),
					"x-failed-at": new Date().toISOString(),
					"x-deliveries": String(message.info.redeliveryCount),
				},
			});
			message.ack();
			this.logger.error(
				`'${chan.name}' message ${message.seq} failed ${message.info.redeliveryCount} times in ${chan.group}; moved to ${chan.deadLettering.queueName}: ${messageOf(error)}`,
			);
		} catch (publishError) {
			this.logger.error(
				`Could not dead-letter '${chan.name}' message ${message.seq}, redelivering later: ${messageOf(publishError)}`,
			);
			message.nak(redeliveryDelay(chan.maxRetries));
		}
	}

	/** Dead letters per original channel, of the oldest `limit` (for the moleshop_dead_letters gauge). */
	async deadLetterDepth(limit: number): Promise<Record<string, number>> {
		const depth: Record<string, number> = {};
		for (const letter of await this.listDeadLetters(limit)) {
			const channel = this.unprefixed(letter.channel);
			depth[channel] = (depth[channel] ?? 0) + 1;
		}
		return depth;
	}

	/** A channel's name without the namespace the adapter puts in front of it (the event type, for metric labels). */
	unprefixed(name: string): string {
		const prefix = this.addPrefixTopic("-").slice(0, -1); // "<namespace>.", or "" without one
		return prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
	}

	/** The oldest `limit` dead letters. */
	async listDeadLetters(limit: number): Promise<DeadLetter[]> {
		const info: StreamInfo = await this.manager.streams.info(this.deadLetterStream());
		const letters: DeadLetter[] = [];
		for (let seq = info.state.first_seq; seq <= info.state.last_seq && letters.length < limit; seq++) {
			const letter = await this.readDeadLetter(seq).catch(() => null); // deleted sequences are gaps
			if (letter) letters.push(letter);
		}
		return letters;
	}

	async readDeadLetter(seq: number): Promise<DeadLetter> {
		const msg = await this.manager.streams.getMessage(this.deadLetterStream(), { seq });
		const header = (name: string) => msg.header?.get(name) ?? "";
		return {
			seq,
			channel: header("x-original-channel"),
			group: header("x-original-group"),
			error: header("x-error"),
			failedAt: header("x-failed-at"),
			deliveries: Number(header("x-deliveries")) || 0,
			payload: this.serializer.deserialize(Buffer.from(msg.data)),
		};
	}

	/**
	 * Publish a dead letter to its channel again and delete it. Every consumer
	 * group of the channel receives it; those that handled it before skip it by event id.
	 */
	async redrive(seq: number): Promise<DeadLetter> {
		const letter = await this.readDeadLetter(seq);
		await this.publish(letter.channel, letter.payload, {});
		await this.manager.streams.deleteMessage(this.deadLetterStream(), seq);
		return letter;
	}

	deadLetterStream(): string {
		return streamName(this.addPrefixTopic(DEAD_LETTER_QUEUE));
	}
}

/** Whether events are durable (JetStream, with a NATS transporter) or in-memory. */
export const durableEvents = (transporter = config.transporter) => !!transporter && transporter.startsWith("nats://");

/**
 * The channels middleware for moleculer.config.ts, with a stream for each of `channelNames` in NATS mode
 * (a NATS URL other than TRANSPORTER is for tools and tests).
 */
export function channelsMiddleware(channelNames: readonly string[], transporter = config.transporter) {
	const adapter = durableEvents(transporter)
		? new JetStreamAdapter(
				{
					nats: {
						url: transporter,
						connectionOptions: {
							maxReconnectAttempts: -1,
							reconnectTimeWait: 1_000,
							waitOnFirstConnect: true,
						},
						streamConfig: { max_age: EVENT_RETENTION_DAYS * 24 * 3600 * 1000 * NANOS_PER_MS },
						// "all": a consumer group that subscribes for the first time also gets what was published before.
						consumerOptions: { config: { deliver_policy: "all" } },
					},
				},
				channelNames,
			)
		: "Fake";
	const channels = ChannelsMiddleware({ adapter } as Parameters<typeof ChannelsMiddleware>[0]) as ChannelsHooks;
	return { ...channels, stopping: (broker: ServiceBroker) => drainChannels(broker, channels) };
}

/** The hooks of the channels middleware this module uses. */
interface ChannelsHooks {
	name: string;
	serviceStopping(svc: Service): Promise<void>;
}

/**
 * What a service hands over when its node begins to stop, before the channels drain: events it holds
 * in memory are published (catalog's view counts) and its outbox relay stops, so that what is written
 * from then on waits in the outbox for the next start instead of reaching consumers that are leaving.
 */
export interface EventHandover {
	handOverEvents(): Promise<void>;
}

const handsOverEvents = (svc: Service): svc is Service & EventHandover =>
	typeof (svc as Partial<EventHandover>).handOverEvents === "function";

/**
 * A node's graceful stop, before any service stops (Moleculer stops them all at once): every service
 * hands over its events, then every consumer finishes the messages it holds — a burst queued in the
 * default mode included — while the services its handlers call are still running. Without this, the
 * handlers of messages still queued ran against services that had stopped already ("The embedded
 * store is not connected"), and in the default mode those events were lost.
 */
async function drainChannels(broker: ServiceBroker, channels: ChannelsHooks) {
	const services = [...broker.services]; // consumers leave the list as they drain
	await Promise.all(services.filter(handsOverEvents).map(svc => svc.handOverEvents()));
	await Promise.all(
		services.map(svc =>
			channels
				.serviceStopping(svc)
				.catch((err: Error) =>
					broker.logger.warn(`Channels of ${svc.fullName} did not drain cleanly: ${err.message}`),
				),
		),
	);
}

/**
 * The JetStream check of a node in NATS mode (none otherwise, platform/health.ts): the adapter's
 * JetStream manager answers for the account, and the dead-letter stream's message count, from its
 * stream info (no message is read), is within HEALTH_DEAD_LETTER_BOUND or reported as degraded.
 */
export function jetStreamHealth(broker: ServiceBroker) {
	const adapter = broker.channelAdapter;
	if (!(adapter instanceof JetStreamAdapter)) return undefined;
	return async () => {
		const manager = (adapter as { manager?: JetStreamManager | null }).manager;
		if (!manager) return { ok: false, reason: "not connected" };
		await manager.getAccountInfo();
		const deadLetters = (await manager.streams.info(adapter.deadLetterStream())).state.messages;
		const bound = config.health.deadLetterBound;
		return { ok: true, deadLetters, deadLetterBound: bound, degraded: deadLetters > bound };
	};
}
