/**
 * Gives a service one collection of its own.
 *
 * - With `MONGO_URI`: moleculer-db-adapter-mongoose and a mongoose model
 *   named after the collection.
 * - Without it: moleculer-db's NeDB adapter, persisted under `DATA_DIR`
 *   (in memory when `NODE_ENV=test`).
 *
 * Both paths share one contract: ids are strings at the API edge, unique
 * indexes are enforced by the store, and conditional updates go through
 * `adapter.updateMany(filter, update)`, which is atomic per document.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context, ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import type { DbAdapter, MoleculerDbMethods } from "moleculer-db";
import MongooseAdapter from "moleculer-db-adapter-mongoose";
import mongoose from "mongoose";
import { config } from "../lib/config";

export interface IndexSpec {
	field: string;
	unique?: boolean;
	/** Documents without the field are not indexed (so they never collide). */
	sparse?: boolean;
}

export interface DbMixinOptions {
	/** Collection (and NeDB file) name. */
	collection: string;
	/** Mongoose schema definition of the stored document (used with MongoDB). */
	schema: mongoose.SchemaDefinition;
	indexes?: IndexSpec[];
}

/** Methods a service gets from moleculer-db and this mixin. */
export interface DbMethods extends MoleculerDbMethods {
	adapter: DbAdapter & {
		model?: mongoose.Model<any>;
		db?: any;
		updateMany(query: object, update: object): Promise<number>;
		removeMany(query: object): Promise<number>;
	};
	/** Whether `id` can be an id of this store (a malformed id is simply not found). */
	isValidId(id: string): boolean;
	/** Whether `err` is a unique-index violation of the store. */
	isDuplicateKeyError(err: unknown): boolean;
	/** Raw document by id, or null (also for malformed ids). */
	findEntity(id: string): Promise<any | null>;
	/** Convert a raw document into the API shape (string `id`, filtered fields). */
	toEntity<T = any>(ctx: Context | null, doc: object): Promise<T>;
	seedDB?(): Promise<void>;
}

function createAdapter(opts: DbMixinOptions): { adapter: any; model?: mongoose.Model<any> } {
	if (config.mongoUri) {
		const schema = new mongoose.Schema(opts.schema, { versionKey: false });
		for (const index of opts.indexes ?? []) {
			schema.index({ [index.field]: 1 }, { unique: !!index.unique, sparse: !!index.sparse });
		}
		const model = mongoose.models[opts.collection] ?? mongoose.model(opts.collection, schema, opts.collection);
		return { adapter: new MongooseAdapter(config.mongoUri), model };
	}
	if (config.isTest) return { adapter: new DbService.MemoryAdapter() };
	fs.mkdirSync(config.dataDir, { recursive: true });
	return { adapter: new DbService.MemoryAdapter({ filename: path.join(config.dataDir, `${opts.collection}.db`) } as any) };
}

/**
 * moleculer-db without its generic CRUD actions: each service declares its own
 * actions (with access rules and strict params), and inherited ones would both
 * bypass them and merge their params into same-named actions.
 */
const { actions: _genericActions, ...DbServiceCore } = DbService as unknown as ServiceSchema<any>;

/** How long a stateful node on the embedded store listens for another instance of its service. */
const PEER_WAIT_MS = 2_000;

/**
 * On the embedded store each node has its own files, so a second instance of a
 * stateful service would silently split its data. Such a node refuses to start,
 * before it opens any store file. With MongoDB, instances share the data.
 */
const SoleInstanceOnEmbeddedStore: Partial<ServiceSchema<any>> = {
	async started(this: any) {
		if (config.mongoUri || !this.broker.transit) return;
		const deadline = Date.now() + PEER_WAIT_MS;
		for (;;) {
			const other = (this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as any[])
				.find(service => service.name === this.name && service.nodeID !== this.broker.nodeID);
			if (other) {
				throw new Error(
					`Refusing to start '${this.name}': node '${other.nodeID}' already runs it. On the embedded store (NeDB files) ` +
					"a second instance would split its data; scaling stateful services needs MONGO_URI (MongoDB shared by all instances).",
				);
			}
			if (Date.now() > deadline) return;
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	},
};

/** The string form of an ObjectId, exactly as the store answers it (lowercase). */
const OBJECT_ID = /^[0-9a-f]{24}$/;

/** Services on this process that use the one shared mongoose connection. */
let mongoServices = 0;

/** Build the db mixin for one collection. */
export function DbMixin(opts: DbMixinOptions): Partial<ServiceSchema<any>> {
	const { adapter, model } = createAdapter(opts);
	const mongo = !!config.mongoUri;

	const schema: Partial<ServiceSchema<any>> = {
		// Of several mixins, the last one's `started` runs first: the check comes before the store opens.
		mixins: [DbServiceCore, SoleInstanceOnEmbeddedStore],
		adapter,
		settings: { idField: "id" },
		methods: {
			isValidId(id: string): boolean {
				return typeof id === "string" && (mongo ? OBJECT_ID.test(id) : id.length > 0);
			},

			isDuplicateKeyError(err: any): boolean {
				return err?.code === 11000 || err?.errorType === "uniqueViolated";
			},

			async findEntity(this: any, id: string) {
				if (!this.isValidId(id)) return null;
				return (await this.adapter.findById(this.decodeID(id))) ?? null;
			},

			toEntity(this: any, ctx: Context | null, doc: object) {
				return this.transformDocuments(ctx, {}, doc);
			},

			/**
			 * All services of a process share one mongoose connection: the last one
			 * to stop closes it, so none is cut off while others finish their work.
			 */
			async disconnect(this: any) {
				if (!mongo) return this.adapter.disconnect();
				if (!this.usesMongo) return;
				this.usesMongo = false;
				if (--mongoServices === 0) await mongoose.connection.close();
			},
		},

		events: {
			/**
			 * moleculer-db broadcasts `cache.clean.<service>` when entities change:
			 * every replica of the service drops its cached reads, not just the writer.
			 */
			"cache.clean.*"(this: any, ctx: Context) {
				if (this.broker.cacher && ctx.eventName === `cache.clean.${this.fullName}`) {
					return this.broker.cacher.clean(`${this.fullName}.**`);
				}
			},
		},

		async afterConnected(this: any) {
			if (mongo) {
				if (!this.usesMongo) {
					this.usesMongo = true;
					mongoServices++;
				}
				await this.adapter.model.init();
			} else {
				for (const index of opts.indexes ?? []) {
					await this.adapter.db.ensureIndexAsync({ fieldName: index.field, unique: !!index.unique, sparse: !!index.sparse });
				}
			}
			if (typeof this.seedDB === "function" && (await this.adapter.count()) === 0) {
				await this.seedDB();
			}
		},
	};
	if (model) schema.model = model;
	return schema;
}
