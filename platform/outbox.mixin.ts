/**
 * A transactional outbox, for a service whose db mixin says it emits events
 * (`DbMixin({ ..., emitsEvents: true })`): the db mixin then adds the outbox's
 * field and index to the collection and this mixin to the service.
 *
 * A state change and the events it implies are written in one atomic write of
 * one document (`updateWithEvents`, `insertWithEvents`): the events go into the
 * document's own outbox. A relay then publishes every outbox event to its
 * channel and removes it from the document once the channel accepted it. The
 * relay runs right after each such write and every RELAY_INTERVAL_MS (also the
 * first time, once the store is open after a start), so an event whose publish
 * was cut short — the node died, NATS was down — is published when the node or
 * NATS is back. Delivery is at least once: JetStream drops a republish of the
 * same event id within its duplicate window, and consumers deduplicate by event id.
 * With tracing on, an event keeps the trace of the action that wrote it (`trace`, platform/tracing.ts).
 */
import type { ServiceSchema } from "moleculer";
import type { EventTrace } from "../contracts/events";
import { config } from "./config";
import type { DbThis, IndexSpec } from "./db.mixin";
import { contributeHealthCheck, type CheckResult } from "./health";
import { countMetric, metricsOn, setMetric } from "./metrics";
import { withTrace } from "./tracing";

const RELAY_INTERVAL_MS = 2_000;
/**
 * Every document with an event in its outbox (event ids are non-empty strings). A range rather than
 * `$exists`, which NeDB answers by scanning the whole collection: the range reads the sparse
 * `outbox.id` index, so the periodic pass costs the pending events, not the collection's size.
 */
const ANY_PENDING_EVENT = { $gt: "" };
const RELAY_BATCH = 100;
const STOP_WAIT_MS = 5_000;
/** The documents with pending events that one measure of the backlog reads, at most. */
const MEASURE_LIMIT = 10_000;

/** An event as the outbox keeps and publishes it (the envelope of every domain event). */
export interface OutboxEvent {
	id: string;
	type: string;
	version: number;
	occurredAt: string;
	data: unknown;
	trace?: EventTrace;
}

/** A store update: MongoDB's update operators, as both stores take them. */
export type StoreUpdate = { $set?: object; $unset?: object; $inc?: object; $push?: object; $pull?: object };

/** Methods a service gets from the outbox. */
export interface OutboxMethods {
	/**
	 * Apply `update` to the documents matching `filter` together with `events`, in the same atomic write
	 * of each document, and publish the events once written. Answers how many documents took the update
	 * (with a filter on one document: 1, or 0 when its condition no longer held and nothing was written).
	 */
	updateWithEvents(filter: object, update: StoreUpdate, events: readonly OutboxEvent[]): Promise<number>;
	/** Insert `doc` with `events` in its outbox and publish them once written. Answers the stored document. */
	insertWithEvents<T extends object>(doc: T, events: readonly OutboxEvent[]): Promise<T>;
	/**
	 * Publish what is pending in the outbox: the given events' (the write just made), or everything without
	 * them (the periodic pass). Never throws: what cannot be published now waits for the next pass.
	 */
	relayOutbox(eventIds?: readonly string[]): Promise<void>;
	/** The node is stopping: the relay stops (EventHandover, platform/channels.ts). */
	handOverEvents(): Promise<void>;
}

/** The outbox's own storage: its field in every document (a mongoose schema part) and its index. */
export const OUTBOX_STORAGE: { field: object; index: IndexSpec } = {
	field: {
		outbox: {
			type: [
				{
					_id: false,
					id: String,
					type: { type: String },
					version: Number,
					occurredAt: String,
					data: {},
					trace: {},
				},
			],
			default: undefined,
		},
	},
	index: { field: "outbox.id", sparse: true },
};

/** What the relay keeps between runs, on the service instance. */
interface RelayState {
	outboxStopped: boolean;
	relayTimer?: NodeJS.Timeout;
	relaying: Promise<void> | null;
	relayFailing: boolean;
	/** Asked while a relay ran: every pending event, and/or the events of these writes. */
	relayPending: { all: boolean; eventIds: string[] };
}

type OutboxThis = DbThis &
	OutboxMethods &
	RelayState & {
		publishOutbox(query: object): Promise<void>;
		measureOutbox(): Promise<void>;
		outboxHealth(): Promise<CheckResult>;
		outboxBacklog(limit: number): Promise<{ backlog: number; oldestAgeSeconds: number; truncated: boolean }>;
	};

export const OutboxMixin: Partial<ServiceSchema<object, OutboxMethods, RelayState, OutboxThis>> = {
	methods: {
		async updateWithEvents(filter: object, update: StoreUpdate, events: readonly OutboxEvent[]) {
			if (events.length === 0) return this.adapter.updateMany(filter, update);
			events = withTrace(events);
			const outbox = events.length === 1 ? events[0] : { $each: events };
			const count = await this.adapter.updateMany(filter, { ...update, $push: { ...update.$push, outbox } });
			if (count > 0) void this.relayOutbox(events.map(event => event.id));
			return count;
		},

		async insertWithEvents<T extends object>(doc: T, events: readonly OutboxEvent[]): Promise<T> {
			events = withTrace(events);
			const saved = (await this.adapter.insert(events.length ? { ...doc, outbox: events } : doc)) as T;
			if (events.length) void this.relayOutbox(events.map(event => event.id));
			return saved;
		},

		relayOutbox(eventIds?: readonly string[]): Promise<void> {
			if (this.outboxStopped || !this.storeConnected) return Promise.resolve();
			// Relays of one service run one at a time; what is asked meanwhile is done right after.
			if (eventIds) this.relayPending.eventIds.push(...eventIds);
			else this.relayPending.all = true;
			if (this.relaying) return this.relaying;
			this.relaying = (async () => {
				while (!this.outboxStopped && (this.relayPending.all || this.relayPending.eventIds.length)) {
					const { all, eventIds: ids } = this.relayPending;
					this.relayPending = { all: false, eventIds: [] };
					try {
						await this.publishOutbox({ "outbox.id": all ? ANY_PENDING_EVENT : { $in: ids } });
						if (this.relayFailing) this.logger.info("Outbox relay is publishing again.");
						this.relayFailing = false;
					} catch (err) {
						if (!this.relayFailing)
							this.logger.warn(`Outbox relay could not publish, will retry: ${(err as Error).message}`);
						this.relayFailing = true;
						return; // what is left is published by the periodic pass
					}
				}
			})().finally(() => {
				this.relaying = null;
			});
			return this.relaying;
		},

		/**
		 * Stop the relay: let a publish in flight finish, but not wait on a stuck store. What is not
		 * published stays in the outbox, for the next start.
		 */
		async handOverEvents() {
			this.outboxStopped = true;
			clearInterval(this.relayTimer);
			let timer: NodeJS.Timeout | undefined;
			await Promise.race([this.relaying, new Promise(resolve => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
			clearTimeout(timer);
		},

		/**
		 * Readiness (platform/health.ts): the unpublished events and the age of the oldest, read from the
		 * sparse outbox index and bounded — at most HEALTH_OUTBOX_BOUND + 1 documents are read, so past the
		 * bound `backlog` is a lower bound (`atLeast`) and the node is degraded. A closed store is the store
		 * check's verdict, not this one's.
		 */
		async outboxHealth(): Promise<CheckResult> {
			const bound = config.health.outboxBound;
			if (!this.storeConnected) return { ok: true, backlog: 0, bound, reason: "store not open" };
			const { backlog, oldestAgeSeconds, truncated } = await this.outboxBacklog(bound + 1);
			return {
				ok: true,
				backlog,
				oldestAgeSeconds: Math.round(oldestAgeSeconds),
				bound,
				degraded: backlog > bound,
				...(truncated ? { atLeast: true } : {}),
			};
		},

		/**
		 * The unpublished events of at most `limit` documents and the age of the oldest, from the sparse
		 * outbox index (NeDB answers a document once per event: each is counted once). `truncated`: more
		 * documents have pending events than were read.
		 */
		async outboxBacklog(limit: number) {
			const docs = (await this.adapter.find({
				query: { "outbox.id": ANY_PENDING_EVENT },
				limit,
			})) as Array<{ _id: unknown; outbox?: OutboxEvent[] }>;
			const seen = new Set<string>();
			let backlog = 0;
			let oldest = Infinity;
			for (const doc of docs) {
				if (seen.has(String(doc._id))) continue;
				seen.add(String(doc._id));
				for (const event of doc.outbox ?? []) {
					backlog++;
					oldest = Math.min(oldest, Date.parse(event.occurredAt) || Date.now());
				}
			}
			const oldestAgeSeconds = backlog ? Math.max(0, (Date.now() - oldest) / 1000) : 0;
			return { backlog, oldestAgeSeconds, truncated: docs.length >= limit };
		},

		/** Publish the pending events of the documents matching `query`, each document's in order; stop at the first failure. */
		async publishOutbox(query: object) {
			for (;;) {
				const docs = (await this.adapter.find({ query, limit: RELAY_BATCH })) as Array<{
					_id: unknown;
					outbox: OutboxEvent[];
				}>;
				// NeDB's index range answers a document once per event in its outbox: publish each document's once.
				const seen = new Set<string>();
				for (const doc of docs) {
					if (seen.has(String(doc._id))) continue;
					seen.add(String(doc._id));
					for (const event of doc.outbox) {
						if (this.outboxStopped) return;
						await this.broker.sendToChannel(event.type, event, { msgID: event.id });
						countMetric(this.broker, "eventsPublished", { channel: event.type });
						await this.adapter.updateMany({ _id: doc._id }, { $pull: { outbox: { id: event.id } } });
					}
				}
				if (docs.length < RELAY_BATCH) return;
			}
		},

		/**
		 * The outbox's backlog and the age of its oldest event, into their gauges: one read of the outbox's
		 * index (the documents with pending events, at most MEASURE_LIMIT of them), after each periodic pass.
		 */
		async measureOutbox() {
			if (!metricsOn(this.broker) || !this.storeConnected) return;
			const { backlog, oldestAgeSeconds } = await this.outboxBacklog(MEASURE_LIMIT);
			const labels = { service: this.name };
			setMetric(this.broker, "outboxBacklog", backlog, labels);
			setMetric(this.broker, "outboxOldestAge", oldestAgeSeconds, labels);
		},
	},

	created() {
		contributeHealthCheck(this, "outbox", () => this.outboxHealth());
		Object.assign(this, {
			outboxStopped: false,
			relaying: null,
			relayFailing: false,
			relayPending: { all: false, eventIds: [] },
		});
	},

	started() {
		this.outboxStopped = false;
		this.relayTimer = setInterval(
			() =>
				void this.relayOutbox().then(() =>
					this.measureOutbox().catch((err: Error) =>
						this.logger.debug(`Outbox not measured: ${err.message}`),
					),
				),
			RELAY_INTERVAL_MS,
		);
		this.relayTimer.unref();
	},

	/** The relay stops as soon as the node begins to stop, before the channels drain (platform/channels.ts). */
	stopped() {
		return this.handOverEvents();
	},
};
