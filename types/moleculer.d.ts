/** Schema keys moleshop (and moleculer-db) add to Moleculer's types. */
import "moleculer";
import type { Access } from "../contracts/context";

declare module "moleculer" {
	interface ActionSchema {
		/** Gateway access level; the gateway treats an action without one as admin-only. */
		auth?: Access;
		/** Per-action request timeout in ms (Moleculer's Timeout middleware reads it). */
		timeout?: number;
	}

	interface ServiceSchema<
		TSettings = ServiceSettingSchema,
		TMethods = Record<string, any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- Moleculer's own default, repeated to merge
		TVars = Record<string, any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- idem
		TThis = Service<TSettings> & TVars & TMethods,
	> {
		/** moleculer-db store adapter. */
		adapter?: unknown;
		/** mongoose model for moleculer-db-adapter-mongoose. */
		model?: unknown;
		/** Moleculer's hook on the schema once its mixins are merged (called with the service as `this`). */
		merged?: (this: TThis, schema: ServiceSchema) => void;
		/** moleculer-db hook, called after the adapter connected. */
		afterConnected?: (this: TThis) => Promise<void> | void;
		/** @moleculer/channels consumers: channel name → options and handler(payload, raw message). */
		channels?: Record<
			string,
			{
				group?: string;
				maxRetries?: number;
				maxInFlight?: number;
				deadLettering?: object;
				handler: (this: TThis, payload: unknown, raw?: unknown) => Promise<void> | void;
			}
		>;
	}

	interface ServiceBroker {
		/** Publish to a channel (@moleculer/channels). */
		sendToChannel(channel: string, payload: unknown, opts?: Record<string, unknown>): Promise<void>;
		/** The channels adapter of this broker (platform/channels.ts: JetStreamAdapter in NATS mode). */
		channelAdapter: unknown;
	}
}
