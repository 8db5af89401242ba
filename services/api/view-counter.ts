/**
 * Product views, counted in memory and published as running totals (by the catalog service).
 *
 * A view is a read: storing one fact per view made every GET of a product a
 * write (and, with NATS, a JetStream message). Instead each catalog process
 * counts views per product and UTC day, and the service publishes the totals
 * that changed, as one `product.views` event per interval (VIEW_FLUSH_MS).
 * Totals rather than increments make that event idempotent: analytics keeps
 * the highest total per counter, product and day, so a redelivery changes
 * nothing and a failed publish is simply repeated by the next one.
 *
 * What a crash loses: the views this process counted since its last publish
 * (at most one interval of its views); a stopping node publishes them first.
 * Totals of past days are dropped once they are published, so memory holds
 * at most the products viewed today and yesterday.
 */
import { randomUUID } from "node:crypto";
import type { ViewCount } from "../../contracts/events";

const DAY_MS = 86_400_000;

interface Total extends ViewCount {
	/** The total last published. */
	published: number;
}

export class ViewCounter {
	/** This counter's identity in the published totals: new for every process. */
	readonly id = randomUUID();
	private readonly totals = new Map<string, Total>();
	/** The UTC day last counted in, and its bounds (one date formatting per day, not per view). */
	private day = { name: "", start: 0, end: 0 };

	/** Count one view of a product, on the UTC day of `at`. */
	count(productId: string, at: number = Date.now()): void {
		const day = this.dayOf(at);
		const key = `${day}|${productId}`;
		const total = this.totals.get(key);
		if (total) total.views++;
		else this.totals.set(key, { productId, day, views: 1, published: 0 });
	}

	private dayOf(at: number): string {
		if (at < this.day.start || at >= this.day.end) {
			const start = at - (at % DAY_MS);
			this.day = { name: new Date(start).toISOString().slice(0, 10), start, end: start + DAY_MS };
		}
		return this.day.name;
	}

	/** The totals that changed since they were last published. */
	changed(): ViewCount[] {
		return [...this.totals.values()]
			.filter(total => total.views > total.published)
			.map(({ productId, day, views }) => ({ productId, day, views }));
	}

	/** Record that `counts` (from `changed()`) reached the consumers; forget past days that are fully published. */
	published(counts: ViewCount[], today: string = new Date().toISOString().slice(0, 10)): void {
		for (const { productId, day, views } of counts) {
			const total = this.totals.get(`${day}|${productId}`);
			if (total && views > total.published) total.published = views;
		}
		for (const [key, total] of this.totals) {
			if (total.day < today && total.published === total.views) this.totals.delete(key);
		}
	}
}
