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

	interface ServiceSchema {
		/** moleculer-db store adapter. */
		adapter?: unknown;
		/** mongoose model for moleculer-db-adapter-mongoose. */
		model?: unknown;
		/** moleculer-db hook, called after the adapter connected. */
		afterConnected?: (this: any) => Promise<void> | void;
		/** @moleculer/channels consumers: channel name → options and handler(payload, raw message). */
		channels?: Record<
			string,
			{
				group?: string;
				maxRetries?: number;
				maxInFlight?: number;
				deadLettering?: object;
				handler: (this: any, payload: any, raw?: any) => Promise<void> | void;
			}
		>;
	}

	interface ServiceBroker {
		/** Publish to a channel (@moleculer/channels). */
		sendToChannel(channel: string, payload: unknown, opts?: Record<string, unknown>): Promise<void>;
		/** The channels adapter of this broker. */
		channelAdapter: any;
	}
}
