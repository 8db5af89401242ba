/**
 * users: accounts, password login and JWTs.
 *
 * The password hash is stored in the `users` collection and never leaves
 * this service: every entity goes through `settings.fields`, which omits it.
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import type { Service, ServiceSchema } from "moleculer";
import argon2 from "argon2";
import jwt from "jsonwebtoken";
import { DbMixin, newObjectId, type DbMethods } from "../../platform/db.mixin";
import type { OutboxMethods } from "../../platform/outbox.mixin";
import { domainEvent } from "../../contracts/events";
import { config } from "../../platform/config";
import { isNotFound } from "../../platform/errors";
import { conflict, notFound, unauthorized } from "../../contracts/errors";
import type { AuthUser, Role, ShopContext } from "../../contracts/context";
import { idParam, pageParams } from "../../platform/params";

const DEV_JWT_SECRET = "moleshop-development-secret";
/** argon2id with OWASP's recommended minimum: 19 MiB, 2 iterations, 1 lane. */
const HASH_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
/**
 * Hashing is the slow dependency of sign-up and login: a node hashes at most
 * four passwords at once and queues 100 more (past that the gateway answers
 * 503); time in the queue counts, so these actions get a longer timeout.
 */
const HASHING_BULKHEAD = { enabled: true, concurrency: 4, maxQueueSize: 100 };
const HASHING_TIMEOUT_MS = 15_000;
const CHANNELS = ["email", "sms", "push"];

/** An account as the API answers it: never its password hash (`settings.fields` leaves it out). */
export interface PublicUser {
	id: string;
	name: string;
	email: string;
	role: Role;
	phone?: string;
	preferences: { channels: string[] };
	createdAt: Date;
	updatedAt: Date;
}

interface UsersMethods extends DbMethods, OutboxMethods {
	/**
	 * The JWT signing key, made once: given the secret as a string, jsonwebtoken builds a key on every
	 * token it checks (and first tries, and fails, to read the secret as a public key).
	 */
	jwtKey: KeyObject;
	dummyHash: string;
	issueToken(user: { id: string; role: Role }): string;
	ensureAdmin(): Promise<void>;
	publicUser(ctx: ShopContext, doc: object): Promise<PublicUser>;
}

const emailParam = { type: "email", normalize: true, max: 254 } as const;
const passwordParam = { type: "string", min: 8, max: 128 } as const;
const nameParam = { type: "string", trim: true, min: 1, max: 100 } as const;

const UsersService: ServiceSchema<object, object, object, Service & UsersMethods> = {
	name: "users",

	mixins: [
		DbMixin({
			collection: "users",
			schema: {
				name: String,
				email: String,
				passwordHash: String,
				role: String,
				phone: String,
				preferences: { channels: [String] },
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "email", unique: true }],
			emitsEvents: true,
		}),
	],

	settings: {
		fields: ["id", "name", "email", "role", "phone", "preferences", "createdAt", "updatedAt"],
	},

	actions: {
		/** Create a customer account and sign it in. */
		register: {
			auth: "public",
			retryPolicy: { enabled: false },
			bulkhead: HASHING_BULKHEAD,
			timeout: HASHING_TIMEOUT_MS,
			params: { $$strict: true, name: nameParam, email: emailParam, password: passwordParam },
			async handler(ctx: ShopContext<{ name: string; email: string; password: string }>) {
				const { name, email, password } = ctx.params;
				const now = new Date();
				// The id is chosen here (an ObjectId's form, valid on both stores) so that the account and its user.registered event are one insert.
				const _id = newObjectId();
				const doc = {
					_id,
					name,
					email,
					passwordHash: await argon2.hash(password, HASH_OPTIONS),
					role: "customer",
					preferences: { channels: ["email"] },
					createdAt: now,
					updatedAt: now,
				};
				let saved;
				try {
					saved = await this.insertWithEvents(doc, [domainEvent("user.registered", { userId: _id }, now)]);
				} catch (err) {
					if (this.isDuplicateKeyError(err)) throw conflict("Email is already registered", "EMAIL_TAKEN");
					throw err;
				}
				await this.entityChanged("created", saved, ctx);
				const user = await this.publicUser(ctx, saved);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = "/api/v1/users/me";
				return { user, token: this.issueToken(user) };
			},
		},

		/** Exchange email and password for a token. Wrong email and wrong password look the same. */
		login: {
			auth: "public",
			bulkhead: HASHING_BULKHEAD,
			timeout: HASHING_TIMEOUT_MS,
			params: {
				$$strict: true,
				email: { type: "string", max: 254, trim: true, lowercase: true },
				password: { type: "string", max: 128 },
			},
			async handler(ctx: ShopContext<{ email: string; password: string }>) {
				const doc = (await this.adapter.findOne({ email: ctx.params.email })) as {
					passwordHash: string;
				} | null;
				// Verify against a dummy hash when there is no such user, so both answers take as long.
				const valid = await argon2.verify(doc?.passwordHash ?? this.dummyHash, ctx.params.password);
				if (!doc || !valid) throw unauthorized("Invalid email or password");
				const user = await this.publicUser(ctx, doc);
				return { user, token: this.issueToken(user) };
			},
		},

		/** The signed-in user's own account. */
		me: {
			auth: "user",
			params: { $$strict: true },
			async handler(ctx: ShopContext) {
				const doc = await this.findEntity(ctx.meta.user!.id);
				if (!doc) throw notFound("User");
				return this.publicUser(ctx, doc);
			},
		},

		/** Change the signed-in user's name, phone or notification preferences. */
		updateMe: {
			auth: "user",
			params: {
				$$strict: true,
				name: { ...nameParam, optional: true },
				phone: { type: "string", pattern: /^\+[1-9][0-9]{6,14}$/, optional: true },
				preferences: {
					type: "object",
					optional: true,
					strict: true,
					props: {
						channels: {
							type: "array",
							unique: true,
							max: CHANNELS.length,
							items: { type: "enum", values: CHANNELS },
						},
					},
				},
			},
			async handler(ctx: ShopContext<{ name?: string; phone?: string; preferences?: { channels: string[] } }>) {
				const id = ctx.meta.user!.id;
				if (!(await this.findEntity(id))) throw notFound("User");
				const changes = { ...ctx.params, updatedAt: new Date() };
				const doc = await this.adapter.updateById(this.decodeID(id), { $set: changes });
				await this.entityChanged("updated", doc, ctx);
				return this.publicUser(ctx, doc);
			},
		},

		/** All accounts, a page at a time (admins). */
		list: {
			auth: "admin",
			params: { $$strict: true, ...pageParams },
			handler(ctx: ShopContext<{ page: number; pageSize: number }>) {
				const { page, pageSize } = ctx.params;
				return this.listPage(ctx, { sort: ["createdAt"], page, pageSize });
			},
		},

		/** One account by id, for other services (404 when missing). */
		get: {
			visibility: "public",
			params: { $$strict: true, id: idParam },
			cache: { keys: ["id"], ttl: 60 },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc) throw notFound("User", ctx.params.id);
				return this.publicUser(ctx, doc);
			},
		},

		/** Every admin account with its contact details and preferences (for notifications). */
		admins: {
			visibility: "public",
			params: { $$strict: true },
			async handler(ctx: ShopContext) {
				const docs = await this.adapter.find({ query: { role: "admin" }, limit: 100 } as object);
				return this.transformDocuments(ctx, {}, docs);
			},
		},

		/**
		 * Verify a JWT and return the trimmed user it names, or null. Used by the
		 * gateway on every request: the signature and expiry are checked every
		 * time, the account lookup is cached.
		 */
		resolveToken: {
			visibility: "public",
			params: { $$strict: true, token: { type: "string", max: 4096 } },
			async handler(ctx: ShopContext<{ token: string }>): Promise<AuthUser | null> {
				let payload: jwt.JwtPayload;
				try {
					payload = jwt.verify(ctx.params.token, this.jwtKey, { algorithms: ["HS256"] }) as jwt.JwtPayload;
				} catch {
					return null;
				}
				if (typeof payload.sub !== "string" || !this.isValidId(payload.sub)) return null;
				const user = await ctx.call<PublicUser, { id: string }>("users.get", { id: payload.sub }).catch(err => {
					if (isNotFound(err)) return null;
					throw err;
				});
				return user && { id: user.id, role: user.role };
			},
		},
	},

	methods: {
		issueToken(user: { id: string; role: Role }) {
			return jwt.sign({ role: user.role }, this.jwtKey, {
				algorithm: "HS256",
				subject: user.id,
				expiresIn: config.jwtExpiresIn as jwt.SignOptions["expiresIn"],
			});
		},

		publicUser(ctx: ShopContext, doc: object) {
			return this.toEntity<PublicUser>(ctx, doc);
		},

		/** With ADMIN_EMAIL and ADMIN_PASSWORD set, make sure that admin account exists with that password. */
		async ensureAdmin() {
			const { adminEmail, adminPassword } = config;
			if (!adminEmail || !adminPassword) return;
			const passwordHash = await argon2.hash(adminPassword, HASH_OPTIONS);
			const now = new Date();
			const existing = await this.adapter.findOne({ email: adminEmail });
			if (existing) {
				await this.adapter.updateMany(
					{ email: adminEmail },
					{ $set: { passwordHash, role: "admin", updatedAt: now } },
				);
			} else {
				const { created } = await this.insertOrGet(
					{
						name: "Administrator",
						email: adminEmail,
						passwordHash,
						role: "admin",
						preferences: { channels: ["email"] },
						createdAt: now,
						updatedAt: now,
					},
					{ email: adminEmail },
				);
				// Another node created it at the same moment: make sure it carries our password and role.
				if (!created)
					await this.adapter.updateMany(
						{ email: adminEmail },
						{ $set: { passwordHash, role: "admin", updatedAt: now } },
					);
			}
			await this.clearCache();
			this.logger.info(`Admin account ${adminEmail} is ready.`);
		},
	},

	created() {
		if (config.jwtSecret) {
			this.jwtKey = createSecretKey(Buffer.from(config.jwtSecret));
		} else if (config.isProduction) {
			throw new Error("JWT_SECRET must be set when NODE_ENV=production; refusing to start.");
		} else {
			this.jwtKey = createSecretKey(Buffer.from(DEV_JWT_SECRET));
			if (!config.isTest)
				this.logger.warn("JWT_SECRET is not set: using the development secret. Never do this in production.");
		}
	},

	/** The two hashes of a start at once: each takes a thread of libuv's pool, and they were in series on the start path. */
	async started() {
		const [dummyHash] = await Promise.all([argon2.hash("not-a-real-password", HASH_OPTIONS), this.ensureAdmin()]);
		this.dummyHash = dummyHash;
	},
};

export default UsersService;
