/** What travels with every call: the signed-in user the gateway trimmed, and the HTTP details moleculer-web reads. */
import type { Context } from "moleculer";

/** Who may call an action through the gateway: anyone, any signed-in user, or admins only. */
export type Access = "public" | "user" | "admin";

export type Role = "customer" | "admin";

/** The trimmed user the gateway puts on `ctx.meta.user`: never more than this travels between nodes. */
export interface AuthUser {
	id: string;
	role: Role;
}

export interface ShopMeta {
	user?: AuthUser | null;
	/** `Idempotency-Key` header of the HTTP request, if any. */
	idempotencyKey?: string;
	/** Read by moleculer-web: HTTP status and extra headers of the response. */
	$statusCode?: number;
	$location?: string;
	$responseHeaders?: Record<string, string>;
}

export type ShopContext<P = unknown> = Context<P, ShopMeta>;
