/** Prices requested lines from catalog products: the catalog's price, never the client's. */
import type { ItemRequest } from "../../contracts/items";
import type { PricedLine } from "../../contracts/pricing";

export interface CatalogProduct {
	id: string;
	sku: string;
	name: string;
	price: number;
	currency: string;
}

export interface PricedLines {
	items: PricedLine[];
	currency: string;
	/** Requested product ids the catalog does not have. */
	missing: string[];
	/** More than one currency among the lines: such lines cannot be added up. */
	mixedCurrencies: boolean;
}

export const DEFAULT_CURRENCY = "USD";

/** Integer cents in, integer cents out. */
export function priceLines(items: ItemRequest[], products: CatalogProduct[]): PricedLines {
	const byId = new Map(products.map(p => [p.id, p]));
	const lines: PricedLine[] = [];
	const missing: string[] = [];
	for (const { productId, quantity } of items) {
		const product = byId.get(productId);
		if (!product) {
			missing.push(productId);
			continue;
		}
		lines.push({
			productId,
			sku: product.sku,
			name: product.name,
			unitPrice: product.price,
			quantity,
			lineTotal: product.price * quantity,
		});
	}
	const currencies = new Set(lines.map(line => byId.get(line.productId)!.currency));
	return {
		items: lines,
		currency: currencies.size === 1 ? [...currencies][0] : DEFAULT_CURRENCY,
		missing,
		mixedCurrencies: currencies.size > 1,
	};
}
