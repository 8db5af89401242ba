/**
 * products: the catalog and its inventory.
 *
 * Prices are integer minor units (cents). Admins set a product's stock; orders
 * move it only through the inventory actions (services/products/inventory.ts:
 * reserve, release, commit, restock), which can never take it below zero.
 */
import type { Service, ServiceSchema } from "moleculer";
import { DbMixin } from "../../platform/db.mixin";
import { inventoryActions, inventoryMethods, type InventoryMethods } from "./inventory";
import type { DbMethods } from "../../platform/db.mixin";
import type { OutboxMethods } from "../../platform/outbox.mixin";
import { config } from "../../platform/config";
import { conflict, notFound } from "../../contracts/errors";
import type { ShopContext } from "../../contracts/context";
import { currencyParam, idParam, pageParams } from "../../platform/params";
import { DEMO_CATALOG } from "./demo-catalog";
import { searchFilter, searchKeys, type Searchable } from "./search";

const MAX_PRICE = 100_000_000; // one million in major units
const MAX_STOCK = 1_000_000;
const SORTS = ["name", "-name", "price", "-price", "createdAt", "-createdAt"];

export interface Product {
	id: string;
	sku: string;
	name: string;
	description: string;
	price: number;
	currency: string;
	category: string;
	stock: number;
	createdAt: Date;
	updatedAt: Date;
}

interface ProductsMethods {
	saveProduct(ctx: ShopContext, save: () => Promise<object>, type: "created" | "updated"): Promise<Product>;
}

const fieldRules = {
	sku: { type: "string", trim: true, uppercase: true, pattern: /^[A-Z0-9][A-Z0-9-]{1,31}$/ },
	name: { type: "string", trim: true, min: 1, max: 200 },
	description: { type: "string", trim: true, max: 2000 },
	price: { type: "number", integer: true, min: 0, max: MAX_PRICE },
	currency: currencyParam,
	category: { type: "string", trim: true, lowercase: true, min: 1, max: 50 },
	stock: { type: "number", integer: true, min: 0, max: MAX_STOCK },
} as const;

/** The same rules, each optional: for partial updates. */
const optionalRules = Object.fromEntries(
	Object.entries(fieldRules).map(([key, rule]) => [key, { ...rule, optional: true }]),
);

/** The products service as its modules (this one and inventory.ts) see it. */
export type ProductsThis = Service & DbMethods & OutboxMethods & InventoryMethods & ProductsMethods;

const ProductsService: ServiceSchema<object, object, object, ProductsThis> = {
	name: "products",

	mixins: [
		DbMixin({
			collection: "products",
			schema: {
				sku: String,
				name: String,
				description: String,
				price: Number,
				currency: String,
				category: String,
				stock: Number,
				// `Object` is mongoose's Mixed, named without loading mongoose on the embedded store.
				reservations: { type: Object },
				restocked: { type: Object },
				/** The search keys (services/products/search.ts), never answered. */
				searchGrams: { type: [String], default: undefined },
				createdAt: Date,
				updatedAt: Date,
			},
			// The sorts of `list` and its search are served by indexes, on both stores.
			indexes: [
				{ field: "sku", unique: true },
				{ field: "category" },
				{ field: "name" },
				{ field: "price" },
				{ field: "createdAt" },
				{ field: "searchGrams" },
			],
			emitsEvents: true,
		}),
	],

	settings: {
		fields: [
			"id",
			"sku",
			"name",
			"description",
			"price",
			"currency",
			"category",
			"stock",
			"createdAt",
			"updatedAt",
		],
	},

	actions: {
		/**
		 * Browse the catalog: text search (services/products/search.ts), category, price range, sorting and
		 * pages; each sort is an index's order.
		 */
		list: {
			auth: "public",
			cache: { keys: ["q", "category", "minPrice", "maxPrice", "sort", "page", "pageSize"], ttl: 30 },
			params: {
				$$strict: true,
				q: { type: "string", trim: true, max: 100, optional: true },
				category: { type: "string", trim: true, lowercase: true, max: 50, optional: true },
				minPrice: { type: "number", integer: true, min: 0, max: MAX_PRICE, convert: true, optional: true },
				maxPrice: { type: "number", integer: true, min: 0, max: MAX_PRICE, convert: true, optional: true },
				sort: { type: "enum", values: SORTS, optional: true, default: "name" },
				...pageParams,
			},
			handler(
				ctx: ShopContext<{
					q?: string;
					category?: string;
					minPrice?: number;
					maxPrice?: number;
					sort: string;
					page: number;
					pageSize: number;
				}>,
			) {
				const { q, category, minPrice, maxPrice, sort, page, pageSize } = ctx.params;
				const query: Record<string, unknown> = {};
				if (category) query.category = category;
				if (minPrice != null || maxPrice != null) {
					query.price = {
						...(minPrice != null && { $gte: minPrice }),
						...(maxPrice != null && { $lte: maxPrice }),
					};
				}
				// The search's own index comes last: of several, the embedded store takes its candidates from the last.
				if (q) Object.assign(query, searchFilter(q));
				return this.listPage(ctx, { query, sort: [sort], page, pageSize });
			},
		},

		/** One product (404 when missing). */
		get: {
			auth: "public",
			cache: { keys: ["id"], ttl: 30 },
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc) throw notFound("Product", ctx.params.id);
				return this.toEntity(ctx, doc);
			},
		},

		/** Several products by id, for pricing. Missing ids are simply absent from the answer. */
		getMany: {
			visibility: "public",
			params: { $$strict: true, ids: { type: "array", max: 100, items: idParam } },
			async handler(ctx: ShopContext<{ ids: string[] }>): Promise<Product[]> {
				const ids = [...new Set(ctx.params.ids)].filter(id => this.isValidId(id));
				if (ids.length === 0) return [];
				const docs = await this.adapter.findByIds(ids.map(id => this.decodeID(id)));
				return this.transformDocuments(ctx, {}, docs);
			},
		},

		/** Products whose stock is at or below `threshold` (LOW_STOCK_THRESHOLD by default), lowest first. */
		lowStock: {
			visibility: "public",
			params: {
				$$strict: true,
				threshold: { type: "number", integer: true, min: 0, max: MAX_STOCK, convert: true, optional: true },
			},
			async handler(ctx: ShopContext<{ threshold?: number }>) {
				const threshold = ctx.params.threshold ?? config.lowStockThreshold;
				const docs = await this.adapter.find({
					query: { stock: { $lte: threshold } },
					sort: ["stock"],
					limit: 100,
				} as object);
				return this.transformDocuments(ctx, {}, docs);
			},
		},

		/** Add a product (admins). */
		create: {
			auth: "admin",
			retryPolicy: { enabled: false },
			params: {
				$$strict: true,
				...fieldRules,
				description: { ...fieldRules.description, optional: true, default: "" },
				currency: { ...fieldRules.currency, optional: true, default: "USD" },
				stock: { ...fieldRules.stock, optional: true, default: 0 },
			},
			async handler(ctx: ShopContext<Omit<Product, "id" | "createdAt" | "updatedAt">>) {
				const now = new Date();
				const product = await this.saveProduct(
					ctx,
					() =>
						this.adapter.insert({
							...ctx.params,
							searchGrams: searchKeys(ctx.params),
							createdAt: now,
							updatedAt: now,
						}),
					"created",
				);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/v1/products/${product.id}`;
				return product;
			},
		},

		/** Change some fields of a product (admins). `stock` sets the quantity on hand. */
		update: {
			auth: "admin",
			params: { $$strict: true, id: idParam, ...optionalRules },
			async handler(ctx: ShopContext<Partial<Product> & { id: string }>) {
				const { id, ...changes } = ctx.params;
				const doc = this.plain(await this.findEntity<Searchable>(id));
				if (!doc) throw notFound("Product", id);
				const text = changes.name ?? changes.description ?? changes.sku;
				const keys = text !== undefined && { searchGrams: searchKeys({ ...doc, ...changes }) };
				return this.saveProduct(
					ctx,
					() =>
						this.adapter.updateById(this.decodeID(id), {
							$set: { ...changes, ...keys, updatedAt: new Date() },
						}),
					"updated",
				);
			},
		},

		/** Delete a product (admins). Orders keep their own copy of the lines. */
		remove: {
			auth: "admin",
			retryPolicy: { enabled: false },
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const doc = await this.findEntity(ctx.params.id);
				if (!doc) throw notFound("Product", ctx.params.id);
				await this.adapter.removeById(this.decodeID(ctx.params.id));
				await this.entityChanged("removed", doc, ctx);
				ctx.meta.$statusCode = 204;
				return null;
			},
		},

		...inventoryActions,
	},

	methods: {
		...inventoryMethods,

		async saveProduct(ctx: ShopContext, save: () => Promise<object>, type: "created" | "updated") {
			let doc;
			try {
				doc = await save();
			} catch (err) {
				if (this.isDuplicateKeyError(err))
					throw conflict("A product with this SKU already exists", "SKU_TAKEN");
				throw err;
			}
			await this.entityChanged(type, doc, ctx);
			return this.toEntity(ctx, doc);
		},

		/** Give the products stored before search keys existed theirs (once: then none lacks them). */
		async upgradeDB() {
			const docs = (await this.adapter.find({ query: { searchGrams: { $exists: false } } })) as Array<
				Searchable & { _id: unknown }
			>;
			for (const doc of docs) {
				await this.adapter.updateMany(
					{ _id: doc._id, searchGrams: { $exists: false } },
					{ $set: { searchGrams: searchKeys(doc) } },
				);
			}
			if (docs.length) this.logger.info(`Gave ${docs.length} products their search keys.`);
		},

		/** Fill an empty catalog with the demo products. */
		async seedDB() {
			const now = new Date();
			try {
				await this.adapter.insertMany(
					DEMO_CATALOG.map(p => ({ ...p, searchGrams: searchKeys(p), createdAt: now, updatedAt: now })),
				);
				this.logger.info(`Seeded the catalog with ${DEMO_CATALOG.length} demo products.`);
			} catch (err) {
				if (!this.isDuplicateKeyError(err)) throw err;
				this.logger.info("The catalog was seeded by another node.");
			}
		},
	},
};

export default ProductsService;
