/**
 * catalog: the public catalog reads, answered beside the gateway, and product views counted.
 *
 * Product pages and catalog pages are the hottest reads of a shop. This
 * service lives in the gateway's folder, so every node that runs the gateway
 * runs it too (moleculer-runner loads each service file of a folder named in
 * SERVICES): it answers them from that node's own cacher and asks products
 * only on a miss, so in a cluster a read costs no round trip to the products
 * node. It holds no data of its own: every change
 * of a product, its fields or its stock, makes products broadcast
 * `cache.clean.products` (moleculer-db), on which this service drops every
 * page it holds — or, when a checkout moved the stock of some products, the
 * pages of those products and the catalog pages, but not the other products'
 * pages, which stay the shop's hottest reads while it sells; a read that was under way when the change came is not kept
 * (`generation`). The broadcast leaves products before the answer to the
 * change does, so a client that changed a product reads the change.
 *
 * Each view is counted in memory (view-counter.ts) and the totals that changed
 * are published every VIEW_FLUSH_MS as one `product.views` event for analytics:
 * a view writes nothing and publishes nothing by itself.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ProductsCleaned } from "../../contracts/items";
import { ViewCounter } from "./view-counter";
import { domainEvent } from "../../contracts/events";
import type { ShopContext } from "../../contracts/context";
import { config } from "../../platform/config";
import { idParam } from "../../platform/params";

/** Seconds a page is kept at most, should a change's broadcast be lost (products keeps its own reads as long). */
const PAGE_TTL = 30;
/** What a catalog page depends on: the params of products.list, which checks them. */
const LIST_KEYS = ["q", "category", "minPrice", "maxPrice", "sort", "page", "pageSize"];

interface CatalogMethods {
	/** Views counted on this process, published every VIEW_FLUSH_MS by `publishViews`. */
	views: ViewCounter;
	viewsTimer?: NodeJS.Timeout;
	publishingViews?: Promise<void>;
	/** Incremented whenever products changed: a read begun before must not be cached after. */
	generation: number;
	cachedRead<T>(ctx: ShopContext, key: string, action: string, params: object): Promise<T>;
	publishViews(): Promise<void>;
	/** The node is stopping: the views counted so far are published while their consumers still run. */
	handOverEvents(): Promise<void>;
}

type CatalogThis = Service & CatalogMethods;

const CatalogService: ServiceSchema<object, object, object, CatalogThis> = {
	name: "catalog",

	actions: {
		/** A customer looks at a product (GET /products/:id): the product (404 when missing), and the view counted. */
		view: {
			auth: "public",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>) {
				const key = `${this.name}.product:${ctx.params.id}`;
				const product = await this.cachedRead<{ id: string }>(ctx, key, "products.get", { id: ctx.params.id });
				this.views.count(product.id);
				return product;
			},
		},

		/**
		 * Browse the catalog (GET /products): products.list's page, from this node's cacher.
		 * The params are products.list's, checked there (a refusal is its 422, and not kept).
		 */
		list: {
			auth: "public",
			async handler(ctx: ShopContext<Record<string, unknown>>) {
				const key = `${this.name}.list:${JSON.stringify(LIST_KEYS.map(name => ctx.params[name] ?? null))}`;
				return this.cachedRead(ctx, key, "products.list", ctx.params);
			},
		},
	},

	events: {
		/**
		 * Products changed (broadcast from every products node): drop every cached page, or, when only the
		 * stock of some products changed (a checkout), their product pages and every catalog page.
		 */
		"cache.clean.products"(ctx: Context<ProductsCleaned | undefined>) {
			this.generation++;
			const productIds = ctx.params?.productIds;
			if (!productIds) return this.broker.cacher?.clean(`${this.name}.**`);
			return this.broker.cacher?.clean([
				`${this.name}.list:**`,
				...productIds.map(id => `${this.name}.product:${id}`),
			]);
		},
	},

	methods: {
		/**
		 * What `action` answers to `params`, from this node's cacher under `key`, or asked and then
		 * kept, unless products changed meanwhile. `meta.$cache: false` skips the cacher, as it does
		 * for Moleculer's cached actions.
		 */
		async cachedRead<T>(ctx: ShopContext, key: string, action: string, params: object) {
			const cacher = (ctx.meta as { $cache?: boolean }).$cache === false ? null : this.broker.cacher;
			const cached = (await cacher?.get(key)) as T | null | undefined;
			if (cached) return cached;
			const generation = this.generation;
			// Tried once: the gateway retries the read itself (another try asks again), and a retry here
			// too would multiply the attempts on a failing products node (4 × 4 instead of 4).
			const answer = await ctx.call<T, object>(action, params, { retries: 0 });
			if (generation === this.generation) await cacher?.set(key, answer, PAGE_TTL);
			return answer;
		},

		/**
		 * Publish the view totals that changed since the last publish, as one
		 * `product.views` event. A failed publish is logged and repeated by the
		 * next one (totals, so nothing is counted twice).
		 */
		async publishViews() {
			if (this.publishingViews) return this.publishingViews; // one publish at a time
			const counts = this.views.changed();
			if (counts.length === 0) return;
			const event = domainEvent("product.views", { counter: this.views.id, counts });
			this.publishingViews = this.broker
				.sendToChannel(event.type, event, { msgID: event.id })
				.then(
					() => this.views.published(counts),
					(err: Error) =>
						this.logger.warn(
							`Product views were not published (tried again in the next interval): ${err.message}`,
						),
				)
				.finally(() => (this.publishingViews = undefined));
			return this.publishingViews;
		},

		async handOverEvents() {
			clearInterval(this.viewsTimer);
			await this.publishingViews; // then what was counted since
			await this.publishViews();
		},
	},

	created() {
		this.views = new ViewCounter();
		this.generation = 0;
	},

	started() {
		this.viewsTimer = setInterval(() => void this.publishViews(), config.catalog.viewFlushMs);
		this.viewsTimer.unref();
	},

	/** Views counted while the node drained: published to JetStream, which keeps them for the consumers. */
	stopped() {
		return this.handOverEvents();
	},
};

export default CatalogService;
