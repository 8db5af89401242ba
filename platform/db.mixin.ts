/**
 * Gives a service one collection of its own.
 *
 * - With `MONGO_URI`: moleculer-db-adapter-mongoose and a mongoose model
 *   named after the collection.
 * - Without it: moleculer-db's NeDB adapter, persisted under `DATA_DIR`
 *   (in memory when `NODE_ENV=test`).
 *
 * Both paths share one contract (platform/store-adapters.ts): ids are strings at the
 * API edge, unique indexes are enforced by the store, conditional updates go
 * through `adapter.updateMany(filter, update)`, which is atomic per document and
 * answers how many documents it applied to, and `toEntity` takes any stored form
 * of a document. On MongoDB every filter and update may name only fields the
 * schema declares: anything else is an error, never silently dropped.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Transporters, type Context, type Service, type ServiceBroker, type ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import type { DbAdapter, MoleculerDbMethods } from "moleculer-db";
import type { Model, SchemaDefinition } from "mongoose";
import { config } from "./config";
import { metricsOn, observeSeconds, secondsSince } from "./metrics";
import { OUTBOX_STORAGE, OutboxMixin } from "./outbox.mixin";
import type { PageRequest } from "./params";
import { EmbeddedStoreAdapter } from "./embedded-store";
import { contributeHealthCheck } from "./health";
import type { MongoStoreAdapter } from "./store-adapters";

/**
 * mongoose and its moleculer-db adapter, loaded on the MongoDB path only: loading them was a third of
 * a second of CPU at the start of every node on the embedded store, and a cluster's start is bound by
 * CPU (`npm run cluster` starts twelve nodes on a machine of a few cores).
 */
function mongoStore() {
	/* eslint-disable @typescript-eslint/no-require-imports */
	return {
		mongoose: require("mongoose") as typeof import("mongoose"),
		...(require("./store-adapters") as typeof import("./store-adapters")),
	};
	/* eslint-enable @typescript-eslint/no-require-imports */
}

export interface IndexSpec {
	field: string;
	unique?: boolean;
	/** Documents without the field are not indexed (so they never collide). */
	sparse?: boolean;
}

export interface DbMixinOptions {
	/** Collection (and NeDB file) name. */
	collection: string;
	/** Mongoose schema definition of the stored document (used with MongoDB): every field a filter or an update names. */
	schema: SchemaDefinition;
	indexes?: IndexSpec[];
	/**
	 * The service emits domain events: its documents get an outbox (field, index, relay) and the service
	 * `updateWithEvents` / `insertWithEvents` (platform/outbox.mixin.ts).
	 */
	emitsEvents?: boolean;
}

/** The envelope of every list the API answers. */
export interface Page<T> {
	rows: T[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

/** Methods a service gets from moleculer-db and this mixin. */
export interface DbMethods extends MoleculerDbMethods {
	adapter: DbAdapter & {
		/** The mongoose model (MongoDB only). */
		model?: Model<object>;
		/** NeDB's datastore (embedded store only). */
		db?: EmbeddedDatastore;
		/** How many documents matched `query`, and so took `update`: always a number. */
		updateMany(query: object, update: object): Promise<number>;
		removeMany(query: object): Promise<number>;
	};
	/** Whether `id` can be an id of this store (a malformed id is simply not found). */
	isValidId(id: string): boolean;
	/** Whether `err` is a unique-index violation of the store. */
	isDuplicateKeyError(err: unknown): boolean;
	/**
	 * Insert `doc`, unless the document a unique index holds for it exists (a concurrent call stored it
	 * first): `existing` is the filter on that index's field. Answers the stored document, and whether
	 * this call created it.
	 */
	insertOrGet<T extends object>(doc: T, existing: object): Promise<{ doc: T; created: boolean }>;
	/**
	 * One page of the documents matching `query`, in `sort` order, as every list answers:
	 * `{ rows, total, page, pageSize, totalPages }` (moleculer-db's envelope, rows through `toEntity`).
	 */
	listPage(ctx: Context, request: PageRequest & { query?: object; sort: string[] }): Promise<Page<Entity>>;
	/** Raw document by id, or null (also for malformed ids). */
	findEntity<T extends object = StoredDoc>(id: string): Promise<T | null>;
	/**
	 * Convert a stored document into the API shape (string `id`, filtered fields): what a read
	 * answered, its `plain()` copy or an object built from one, on either store; `doc` is left as it is.
	 */
	toEntity<T = Entity>(ctx: Context | null, doc: object): Promise<T>;
	/** A stored document as a plain object (mongoose answers documents whose fields a spread does not copy). */
	plain<T>(doc: T): T;
	/** The next number of the named counter (1, 2, ...): unique and increasing, also across nodes on MongoDB. */
	nextSequence(name: string): Promise<number>;
	/**
	 * Update the one document matching `filter` (equality on a unique field), or
	 * insert it from the filter's fields and the update's when there is none.
	 */
	upsert(filter: object, update: object): Promise<void>;
	seedDB?(): Promise<void>;
	/** Bring documents an earlier version wrote up to date (run at every start, once the indexes exist). */
	upgradeDB?(): Promise<void>;
	/** Set once the store is open (the relay and the recovery sweep wait for it). */
	storeConnected?: boolean;
}

/** A service with the db mixin, as the platform's mixins see it. */
export type DbThis = Service & DbMethods;

/** What the db mixin keeps on its service, besides its methods. */
interface DbState {
	/** This service holds one use of the process's mongoose connection. */
	usesMongo?: boolean;
	/** The embedded store's lock file this node holds for the collection. */
	lockFile?: string;
	refuseIfServedElsewhere(): Promise<void>;
}

type DbServiceThis = DbThis & DbState;

/** A stored document: its id, and whatever fields the collection's schema declares. */
export type StoredDoc = { _id: unknown } & Record<string, unknown>;

/** A document in the API's shape (string `id`, the service's `settings.fields`). */
export type Entity = Record<string, unknown>;

/** The few calls of NeDB's datastore the mixin makes itself. */
interface EmbeddedDatastore {
	updateAsync(query: object, update: object, options: object): Promise<{ affectedDocuments: { seq: number } }>;
	ensureIndexAsync(options: { fieldName: string; unique: boolean; sparse: boolean }): Promise<void>;
}

/** The moleculer-db adapter for a collection: MongoDB's (with its model) or the embedded store's. */
type StoreAdapter = MongoStoreAdapter | EmbeddedStoreAdapter;

function createAdapter(opts: DbMixinOptions): { adapter: StoreAdapter; model?: Model<object> } {
	if (config.mongoUri) {
		const { mongoose, MongoStoreAdapter } = mongoStore();
		// Strict both ways: an undeclared field in a document, an update or a filter throws instead of being dropped.
		const schema = new mongoose.Schema(opts.schema, { versionKey: false, strict: "throw", strictQuery: "throw" });
		for (const index of opts.indexes ?? []) {
			schema.index({ [index.field]: 1 }, { unique: !!index.unique, sparse: !!index.sparse });
		}
		const model: Model<object> =
			mongoose.models[opts.collection] ?? mongoose.model(opts.collection, schema, opts.collection);
		return { adapter: new MongoStoreAdapter(config.mongoUri), model };
	}
	if (config.isTest) return { adapter: new EmbeddedStoreAdapter() };
	fs.mkdirSync(config.dataDir, { recursive: true });
	return {
		adapter: new EmbeddedStoreAdapter({ filename: path.join(config.dataDir, `${opts.collection}.db`) }),
	};
}

/**
 * moleculer-db without its generic CRUD actions: each service declares its own
 * actions (with access rules and strict params), and inherited ones would both
 * bypass them and merge their params into same-named actions.
 */
const { actions: _genericActions, ...DbServiceCore } = DbService as unknown as ServiceSchema;

/**
 * How long a stateful node on the embedded store listens for another instance of its service once its
 * services start: as long as finding the nodes already running takes. Moleculer's TCP transporter
 * finds them by gossip, every 2 s. Over NATS (and the in-process Fake) discovery is a broadcast every
 * node answers at once, and Moleculer's connect has already waited 500 ms for the answers before any
 * service starts; half a second more is the margin for a node too busy to answer in time. (Waiting
 * longer would not catch an instance starting at the same moment on other files: it announces itself
 * only after its own wait. On the same DATA_DIR the lock file decides.)
 */
export const peerWaitMs = (broker: ServiceBroker) => (broker.transit?.tx instanceof Transporters.TCP ? 2_000 : 500);

function refuse(service: string, nodeID: string): Error {
	return new Error(
		`Refusing to start '${service}': node '${nodeID}' already runs it. On the embedded store (NeDB files) ` +
			"a second instance would split its data; scaling stateful services needs MONGO_URI (MongoDB shared by all instances).",
	);
}

function processAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/**
 * Take `<DATA_DIR>/<collection>.lock` for this process: created exclusively, so of
 * two nodes starting at once exactly one gets it. A lock left by a dead process is taken over.
 */
function lockCollection(service: string, collection: string, nodeID: string): string {
	const file = path.join(config.dataDir, `${collection}.lock`);
	for (;;) {
		try {
			fs.writeFileSync(file, JSON.stringify({ nodeID, pid: process.pid }), { flag: "wx" });
			return file;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
		}
		let holder: { nodeID: string; pid: number };
		try {
			holder = JSON.parse(fs.readFileSync(file, "utf8"));
		} catch {
			holder = { nodeID: "unknown", pid: 0 }; // half-written by a node starting this instant
			if (Date.now() - fs.statSync(file).mtimeMs < 5_000) throw refuse(service, "starting just now");
		}
		if (holder.pid && processAlive(holder.pid)) throw refuse(service, holder.nodeID);
		fs.rmSync(file, { force: true });
	}
}

/**
 * On the embedded store each node has its own files, so a second instance of a
 * stateful service would silently split its data (or two would write one file).
 * Such a node refuses to start, before it opens any store file: it must get the
 * collection's lock file in DATA_DIR, and no other node of the cluster may
 * already serve the service. With MongoDB, instances share the data.
 */
const soleInstanceOnEmbeddedStore = (
	collection: string,
): Partial<ServiceSchema<object, object, object, DbServiceThis>> => ({
	async started() {
		if (config.mongoUri) return;
		if (!config.isTest) {
			fs.mkdirSync(config.dataDir, { recursive: true });
			this.lockFile = lockCollection(this.name, collection, this.broker.nodeID);
		}
		try {
			await this.refuseIfServedElsewhere();
		} catch (err) {
			if (this.lockFile) fs.rmSync(this.lockFile, { force: true });
			throw err;
		}
	},

	methods: {
		/** Watch the registry for peerWaitMs: another node serving this service means refusing. */
		async refuseIfServedElsewhere() {
			if (!this.broker.transit) return;
			const deadline = Date.now() + peerWaitMs(this.broker);
			for (;;) {
				const services = this.broker.registry.getServiceList({
					onlyAvailable: true,
					skipInternal: true,
				}) as Array<{
					name: string;
					nodeID: string;
				}>;
				const other = services.find(
					service => service.name === this.name && service.nodeID !== this.broker.nodeID,
				);
				if (other) throw refuse(this.name, other.nodeID);
				if (Date.now() > deadline) return;
				await new Promise(resolve => setTimeout(resolve, 100));
			}
		},
	},

	stopped() {
		if (this.lockFile) fs.rmSync(this.lockFile, { force: true });
	},
});

/** Whether `value` has the method `name` (an ObjectId's `toHexString`, a mongoose document's `toObject`). */
function hasMethod<K extends string>(value: unknown, name: K): value is Record<K, () => unknown> {
	return value != null && typeof (value as Record<string, unknown>)[name] === "function";
}

/** The string form of an ObjectId, exactly as the store answers it (lowercase). */
const OBJECT_ID = /^[0-9a-f]{24}$/;

/** Whether any action of the service keeps its answers in the cacher. */
function cachesReads(schema: Partial<ServiceSchema>): boolean {
	return Object.values(schema.actions ?? {}).some(
		action => typeof action === "object" && action !== null && !!(action as { cache?: unknown }).cache,
	);
}

/**
 * A new id in an ObjectId's string form, valid on both stores, for a document whose id is chosen
 * before its insert: its creation second, as an ObjectId begins, then 8 random bytes (mongoose's
 * ObjectId would load mongoose on the embedded store for it).
 */
export const newObjectId = (): string =>
	Math.floor(Date.now() / 1000)
		.toString(16)
		.padStart(8, "0") + randomBytes(8).toString("hex");

/** The store operations timed per collection (moleshop_store_operation_duration_seconds{operation}). */
const TIMED_OPERATIONS = [
	"find",
	"findOne",
	"findById",
	"findByIds",
	"count",
	"insert",
	"insertMany",
	"updateMany",
	"updateById",
	"removeMany",
	"removeById",
] as const;
const TIMED = Symbol("timed store operations");

/**
 * Time every operation of the service's adapter into the store histogram, once per adapter (a service
 * created again from its schema shares it). Only with metrics on: otherwise the adapter is left as it is.
 */
function timeStoreOperations(broker: ServiceBroker, adapter: StoreAdapter, collection: string): void {
	const target = adapter as unknown as Record<PropertyKey, unknown>;
	if (!metricsOn(broker) || target[TIMED]) return;
	target[TIMED] = true;
	for (const operation of TIMED_OPERATIONS) {
		const original = target[operation] as (...args: unknown[]) => Promise<unknown>;
		if (typeof original !== "function") continue;
		const labels = { collection, operation };
		target[operation] = function (this: unknown, ...args: unknown[]) {
			const start = process.hrtime.bigint();
			return original
				.apply(this, args)
				.finally(() => observeSeconds(broker, "storeOperationDuration", secondsSince(start), labels));
		};
	}
}

/** Services on this process that use the one shared mongoose connection. */
let mongoServices = 0;

/** Build the db mixin for one collection. */
export function DbMixin(options: DbMixinOptions): Partial<ServiceSchema> {
	const opts = options.emitsEvents
		? {
				...options,
				schema: { ...options.schema, ...OUTBOX_STORAGE.field },
				indexes: [...(options.indexes ?? []), OUTBOX_STORAGE.index],
			}
		: options;
	const { adapter, model } = createAdapter(opts);
	const mongo = !!config.mongoUri;

	const schema: Partial<ServiceSchema<{ idField: string }, object, object, DbServiceThis>> = {
		// Of several mixins, the last one's `started` runs first: the check comes before the store opens.
		mixins: [DbServiceCore, soleInstanceOnEmbeddedStore(opts.collection) as Partial<ServiceSchema>],
		adapter,
		settings: { idField: "id" },
		methods: {
			isValidId(id: string): boolean {
				return typeof id === "string" && (mongo ? OBJECT_ID.test(id) : id.length > 0);
			},

			isDuplicateKeyError(err: unknown): boolean {
				const { code, errorType } = (err ?? {}) as { code?: unknown; errorType?: unknown };
				return code === 11000 || errorType === "uniqueViolated";
			},

			async insertOrGet(doc: object, existing: object) {
				try {
					return { doc: await this.adapter.insert(doc), created: true };
				} catch (err) {
					if (!this.isDuplicateKeyError(err)) throw err;
					const stored = await this.adapter.findOne(existing);
					if (!stored) throw err; // the collision was on another unique field
					return { doc: stored, created: false };
				}
			},

			listPage(
				ctx: Context,
				{ query = {}, sort, page, pageSize }: PageRequest & { query?: object; sort: string[] },
			) {
				return this._list(ctx, { query, sort, page, pageSize, limit: pageSize, offset: (page - 1) * pageSize });
			},

			async findEntity(id: string) {
				if (!this.isValidId(id)) return null;
				return (await this.adapter.findById(this.decodeID(id))) ?? null;
			},

			/**
			 * moleculer-db's `clearCache`, for a service with cached reads only: one with none (orders,
			 * payments, invoices…) has nothing to drop on any node, and broadcasts nothing (twice per order
			 * from orders alone, to every node of the cluster).
			 */
			clearCache() {
				if (!cachesReads(this.schema)) return Promise.resolve();
				this.broker.broadcast(`cache.clean.${this.fullName}`);
				return this.broker.cacher?.clean(`${this.fullName}.**`) ?? Promise.resolve();
			},

			/** Ids leave as strings (moleculer-db hands out MongoDB's ObjectIds as they are). */
			encodeID(id: unknown) {
				return hasMethod(id, "toHexString") ? id.toHexString() : id;
			},

			plain<T>(doc: T): T {
				return hasMethod(doc, "toObject") ? (doc.toObject() as T) : doc;
			},

			toEntity(ctx: Context | null, doc: object) {
				return this.transformDocuments(ctx as Context, {}, doc);
			},

			/**
			 * A counter document (`_id: "sequence:<name>"`) in this service's own
			 * collection, incremented atomically. Queries of the service's entities
			 * never match it (it has none of their fields).
			 */
			async nextSequence(name: string): Promise<number> {
				const _id = `sequence:${name}`;
				if (!mongo) {
					const { affectedDocuments } = await this.adapter.db!.updateAsync(
						{ _id },
						{ $inc: { seq: 1 } },
						{ upsert: true, returnUpdatedDocs: true },
					);
					return affectedDocuments.seq;
				}
				const increment = () =>
					this.adapter.model!.collection.findOneAndUpdate(
						{ _id: _id as never },
						{ $inc: { seq: 1 } },
						{ upsert: true, returnDocument: "after" },
					);
				// Two first increments at once: one upsert wins, the other retries as an update.
				const doc = await increment().catch((err: unknown) =>
					this.isDuplicateKeyError(err) ? increment() : Promise.reject(err),
				);
				return doc!.seq as number;
			},

			async upsert(filter: object, update: object): Promise<void> {
				if (!mongo) {
					await this.adapter.db!.updateAsync(filter, update, { upsert: true });
					return;
				}
				const write = () => this.adapter.model!.updateOne(filter, update, { upsert: true });
				// Two first upserts at once: one inserts, the other retries as an update.
				await write().catch((err: unknown) => (this.isDuplicateKeyError(err) ? write() : Promise.reject(err)));
			},

			/**
			 * All services of a process share one mongoose connection: the last one
			 * to stop closes it, so none is cut off while others finish their work.
			 */
			async disconnect() {
				this.storeConnected = false;
				if (!mongo) return this.adapter.disconnect();
				if (!this.usesMongo) return;
				this.usesMongo = false;
				if (--mongoServices === 0) await mongoStore().mongoose.connection.close();
			},
		},

		/**
		 * moleculer-db broadcasts `cache.clean.<service>` when entities change: every replica of a
		 * service with cached reads drops them, not just the writer. Each such service listens to its
		 * own broadcast only (a `cache.clean.*` listener in every service made one broadcast ten
		 * deliveries on a node, nine of them to services that ignored it).
		 */
		merged(merged: ServiceSchema) {
			if (!cachesReads(merged)) return;
			merged.events = {
				...merged.events,
				[`cache.clean.${merged.name}`](this: Service) {
					return this.broker.cacher?.clean(`${this.fullName}.**`);
				},
			};
		},

		/**
		 * Store timings (platform/metrics.ts), and readiness (platform/health.ts): the store is open — NeDB
		 * loaded, or mongoose's connection up (readyState 1).
		 */
		created(this: DbServiceThis) {
			// moleculer-db's `created` (a mixin's, so it ran first) set the service's adapter.
			timeStoreOperations(this.broker, this.adapter as unknown as StoreAdapter, opts.collection);
			contributeHealthCheck(this, "store", () => {
				const open = mongo ? mongoStore().mongoose.connection.readyState === 1 : !!this.adapter.db;
				const ok = open && !!this.storeConnected;
				return { ok, collection: opts.collection, ...(ok ? {} : { reason: "not connected" }) };
			});
		},

		async afterConnected(this: DbServiceThis) {
			this.storeConnected = true;
			if (mongo) {
				if (!this.usesMongo) {
					this.usesMongo = true;
					mongoServices++;
				}
				await this.adapter.model!.init();
			} else {
				for (const index of opts.indexes ?? []) {
					await this.adapter.db!.ensureIndexAsync({
						fieldName: index.field,
						unique: !!index.unique,
						sparse: !!index.sparse,
					});
				}
			}
			if (typeof this.upgradeDB === "function") await this.upgradeDB();
			if (typeof this.seedDB === "function" && (await this.adapter.count()) === 0) {
				await this.seedDB();
			}
		},
	};
	if (model) schema.model = model;
	// The outbox comes after the store, as a mixin of the service: its relay stops before the store closes.
	const store = schema as Partial<ServiceSchema>;
	return opts.emitsEvents ? { mixins: [store, OutboxMixin as Partial<ServiceSchema>] } : store;
}
