/**
 * catalog: product pages, answered beside the gateway, and their views counted.
 *
 * A product page is the hottest read of a shop. This service lives in the
 * gateway's folder, so every node that runs the gateway runs it too
 * (moleculer-runner loads each service file of a folder named in SERVICES): it
 * answers a page from that node's own cacher and asks products only on a miss,
 * so in a cluster a page costs no round trip to the products node. It holds no data of its own: every change
 * of a product, its fields or its stock, makes products broadcast
 * `cache.clean.products` (moleculer-db), on which this service drops every
 * page it holds; a read that was under way when the change came is not kept
 * (`generation`). The broadcast leaves products before the answer to the
 * change does, so a client that changed a product reads the change.
 *
 * Each view is counted in memory (view-counter.ts) and the totals that changed
 * are published every VIEW_FLUSH_MS as one `product.views` event for analytics:
 * a view writes nothing and publishes nothing by itself.
 */
import type { Service, ServiceSchema } from "moleculer";
import { ViewCounter } from "./view-counter";
import { domainEvent } from "../../contracts/events";
import type { ShopContext } from "../../contracts/context";
import { config } from "../../platform/config";
import { idParam } from "../../platform/params";

/** Seconds a page is kept at most, should a change's broadcast be lost (products keeps its own reads as long). */
const PAGE_TTL = 30;

interface CatalogMethods {
	/** Views counted on this process, published every VIEW_FLUSH_MS by `publishViews`. */
	views: ViewCounter;
	viewsTimer?: NodeJS.Timeout;
	publishingViews?: Promise<void>;
	/** Incremented whenever products changed: a read begun before must not be cached after. */
	generation: number;
	product(ctx: ShopContext, id: string): Promise<{ id: string }>;
	publishViews(): Promise<void>;
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
				const product = await this.product(ctx, ctx.params.id);
				this.views.count(product.id);
				return product;
			},
		},
	},

	events: {
		/** A product changed (moleculer-db broadcasts it from every products node): drop every cached page. */
		"cache.clean.products"() {
			this.generation++;
			return this.broker.cacher?.clean(`${this.name}.**`);
		},
	},

	methods: {
		/**
		 * A product from this node's cacher, or from products (then cached, unless products changed
		 * meanwhile). `meta.$cache: false` skips the cacher, as it does for Moleculer's cached actions.
		 */
		async product(ctx: ShopContext, id: string) {
			const cacher = (ctx.meta as { $cache?: boolean }).$cache === false ? null : this.broker.cacher;
			const key = `${this.name}.product:${id}`;
			const cached = (await cacher?.get(key)) as { id: string } | null | undefined;
			if (cached) return cached;
			const generation = this.generation;
			const product = await ctx.call<{ id: string }, { id: string }>("products.get", { id });
			if (generation === this.generation) await cacher?.set(key, product, PAGE_TTL);
			return product;
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
	},

	created() {
		this.views = new ViewCounter();
		this.generation = 0;
	},

	started() {
		this.viewsTimer = setInterval(() => void this.publishViews(), config.catalog.viewFlushMs);
		this.viewsTimer.unref();
	},

	async stopped() {
		clearInterval(this.viewsTimer);
		await this.publishingViews; // then what was counted since
		await this.publishViews();
	},
};

export default CatalogService;
