/**
 * pricing: quotes carts and orders.
 *
 * Stateless, so any number of replicas may run. Every line is priced from the
 * catalog (`products.getMany`); discount codes, shipping and tax follow the
 * rules in the configuration (platform/config.ts, services/pricing/quote.ts), in integer cents.
 * The same request at the same moment gives the same quote on every replica.
 */
import type { ServiceSchema } from "moleculer";
import { config } from "../../platform/config";
import { unprocessable } from "../../contracts/errors";
import type { ShopContext } from "../../contracts/context";
import { itemsParam, mergeItems } from "../../contracts/items";
import { type PricingQuote, quoteOptionParams, type QuoteParams } from "../../contracts/pricing";
import { type CatalogProduct, priceLines } from "./price-lines";
import { DEFAULT_COUNTRIES, DEFAULT_DISCOUNT_CODES, type PricingRules, quote, QuoteError } from "./quote";

/** The shop's rules: where it ships, free shipping, and the discount codes of DISCOUNT_CODES (or the demo codes). */
const RULES: PricingRules = {
	countries: DEFAULT_COUNTRIES,
	freeShippingFrom: config.pricing.freeShippingFrom,
	discountCodes: config.pricing.discountCodes ?? DEFAULT_DISCOUNT_CODES,
};

const PricingService: ServiceSchema = {
	name: "pricing",

	actions: {
		/** Price `items` for delivery to `country` with an optional discount code, now. */
		quote: {
			auth: "public",
			params: { $$strict: true, items: { ...itemsParam, min: 0 }, ...quoteOptionParams },
			async handler(ctx: ShopContext<QuoteParams>): Promise<PricingQuote> {
				const items = mergeItems(ctx.params.items);
				const products = items.length
					? await ctx.call<CatalogProduct[], { ids: string[] }>("products.getMany", {
							ids: items.map(item => item.productId),
						})
					: [];
				const priced = priceLines(items, products);
				if (priced.mixedCurrencies)
					throw unprocessable("All products of one order must have the same currency", "MIXED_CURRENCIES");
				const options = {
					country: ctx.params.country ?? config.defaultCountry,
					discountCode: ctx.params.discountCode,
					at: new Date(),
				};
				try {
					return { ...quote(priced.items, priced.currency, options, RULES), missing: priced.missing };
				} catch (err) {
					if (err instanceof QuoteError) throw unprocessable(err.message, err.type);
					throw err;
				}
			},
		},
	},
};

export default PricingService;
