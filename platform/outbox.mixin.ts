/**
 * A transactional outbox for a service with the db mixin.
 *
 * A state change and the events it implies are written in one atomic update
 * of one document: the change itself plus `$push: { outbox: event }` (see
 * `outboxPush`). A relay then publishes every outbox event to its channel and
 * removes it from the document once the channel accepted it. The relay runs
 * right after each write (`relayOutbox`) and every RELAY_INTERVAL_MS (also the
 * first time, once the store is open after a start), so an
 * event whose publish was cut short — the node died, NATS was down — is
 * published when the node or NATS is back. Delivery is at least once: JetStream
 * drops a republish of the same event id within its duplicate window, and
 * consumers deduplicate by event id.
 */
import type { ServiceSchema } from "moleculer";
import type { DomainEvent } from "../contracts/events";

const RELAY_INTERVAL_MS = 2_000;
const RELAY_BATCH = 100;
const STOP_WAIT_MS = 5_000;

export interface OutboxMethods {
	/**
	 * Publish the pending outbox events of the documents matching `scope` (the
	 * document just written, so a write costs one indexed lookup), or of the whole
	 * collection without one (the periodic pass). Never throws.
	 */
	relayOutbox(scope?: object): Promise<void>;
}

/** The update part that records `events` in a document's outbox, to merge into the state change's update. */
export function outboxPush(...events: DomainEvent[]) {
	return { $push: { outbox: events.length === 1 ? events[0] : { $each: events } } };
}

/** The store fields of the outbox, for the db mixin's schema and indexes. */
export const OUTBOX_FIELD = { outbox: { type: [{ _id: false, id: String, type: { type: String }, version: Number, occurredAt: String, data: {} }], default: undefined } };
export const OUTBOX_INDEX = { field: "outbox.id", sparse: true };

export const OutboxMixin: Partial<ServiceSchema<any>> = {
	methods: {
		relayOutbox(this: any, scope?: object): Promise<void> {
			if (this.outboxStopped || !this.storeConnected) return Promise.resolve(); // the db mixin sets storeConnected
			// Relays of one service run one at a time; what is asked meanwhile is done right after.
			this.relayPending ??= { all: false, scopes: [] as object[] };
			if (scope) this.relayPending.scopes.push(scope);
			else this.relayPending.all = true;
			if (this.relaying) return this.relaying;
			this.relaying = (async () => {
				while (!this.outboxStopped && (this.relayPending.all || this.relayPending.scopes.length)) {
					const { all, scopes } = this.relayPending;
					this.relayPending = { all: false, scopes: [] };
					try {
						for (const scope of all ? [{}] : scopes) await this.publishOutbox(scope);
						if (this.relayFailing) this.logger.info("Outbox relay is publishing again.");
						this.relayFailing = false;
					} catch (err: any) {
						if (!this.relayFailing) this.logger.warn(`Outbox relay could not publish, will retry: ${err.message}`);
						this.relayFailing = true;
						return; // what is left is published by the periodic pass
					}
				}
			})().finally(() => {
				this.relaying = null;
			});
			return this.relaying;
		},

		/** Publish the pending events of the documents in `scope`, each document's in order; stop at the first failure. */
		async publishOutbox(this: any, scope: object) {
			for (;;) {
				const query = { ...scope, "outbox.id": { $exists: true } };
				const docs = (await this.adapter.find({ query, limit: RELAY_BATCH })) as Array<{ _id: unknown; outbox: DomainEvent[] }>;
				for (const doc of docs) {
					for (const event of doc.outbox) {
						if (this.outboxStopped) return;
						await this.broker.sendToChannel(event.type, event, { msgID: event.id });
						await this.adapter.updateMany({ _id: doc._id }, { $pull: { outbox: { id: event.id } } });
					}
				}
				if (docs.length < RELAY_BATCH) return;
			}
		},
	},

	started(this: any) {
		this.outboxStopped = false;
		this.relayTimer = setInterval(() => void this.relayOutbox(), RELAY_INTERVAL_MS);
		this.relayTimer.unref();
	},

	/**
	 * Let a publish in flight finish (the channel adapter closes after the services
	 * stop), but not wait on a stuck store: what is not published stays in the outbox.
	 */
	async stopped(this: any) {
		this.outboxStopped = true;
		clearInterval(this.relayTimer);
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([this.relaying, new Promise(resolve => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
		clearTimeout(timer);
	},
};
