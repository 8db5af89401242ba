/**
 * The translation check of the MongoDB path: every filter and update that any
 * service issues through mongoose during the suite is compared with what mongoose
 * cast it to, and sent to the store. A path of the filter or update that is missing
 * from the cast one was dropped (it would widen a conditional update, or lose a
 * change), and an `_id` that is not an ObjectId was not cast. Each test of the
 * "mongodb" project fails when one of its operations did either (mongo-after-env.ts).
 *
 * The db mixin's schemas are strict both ways (`"throw"`), so an undeclared path
 * fails the operation itself; this check also catches whatever mongoose would
 * silently change in a filter or an update.
 */
import mongoose from "mongoose";

/** The query operations moleculer-db-adapter-mongoose and the services use, as mongoose names them. */
const OPERATIONS = [
	"find",
	"findOne",
	"countDocuments",
	"updateMany",
	"updateOne",
	"deleteMany",
	"deleteOne",
	"findOneAndUpdate",
	"findOneAndDelete",
];

export interface Violation {
	collection: string;
	operation: string;
	problem: string;
}

const violations: Violation[] = [];
let operations = 0;

/**
 * Leaves of a filter or an update as dotted paths: ObjectIds, dates and regular expressions
 * are leaves, undefined is no value, cast subdocuments count by their fields, and
 * `$push: { x: v }` and `$push: { x: { $each: [v] } }` name the same paths.
 */
export function leafPaths(value: unknown, prefix = ""): string[] {
	if (value === undefined) return [];
	if (value instanceof mongoose.Document) return leafPaths(value.toObject(), prefix);
	if (
		value === null ||
		typeof value !== "object" ||
		value instanceof Date ||
		value instanceof RegExp ||
		value instanceof mongoose.Types.ObjectId
	) {
		return [prefix];
	}
	if ((value as { _bsontype?: string })._bsontype) return [prefix];
	const entries: Array<[string, unknown]> = Array.isArray(value)
		? [...value].map((v, i) => [String(i), v])
		: Object.entries(value);
	if (entries.length === 0) return [prefix];
	return entries
		.flatMap(([key, v]) => leafPaths(v, prefix ? `${prefix}.${key}` : key))
		.map(path => path.replace(/\.\$each\.\d+(?=\.|$)/g, ""));
}

/** Every `_id` leaf of a cast filter that is not an ObjectId. */
function uncastIds(filter: unknown): string[] {
	const found: string[] = [];
	const walk = (value: unknown, path: string, underId: boolean) => {
		if (value instanceof mongoose.Types.ObjectId) return;
		if (value === null || typeof value !== "object" || value instanceof Date || value instanceof RegExp) {
			if (underId) found.push(`${path} = ${JSON.stringify(value)}`);
			return;
		}
		for (const [key, v] of Object.entries(value)) walk(v, path ? `${path}.${key}` : key, underId || key === "_id");
	};
	walk(filter, "", false);
	return found;
}

function check(
	query: mongoose.Query<unknown, unknown> & { op?: string; $translation?: { filter: string[]; update: string[] } },
) {
	operations++;
	const before = query.$translation;
	if (!before) return;
	const where = { collection: query.model.collection.collectionName, operation: query.op ?? "?" };
	const castFilter = new Set(leafPaths(query.getFilter()));
	const castUpdate = new Set(leafPaths(query.getUpdate() ?? undefined));
	for (const path of before.filter)
		if (!castFilter.has(path)) violations.push({ ...where, problem: `filter path '${path}' was dropped` });
	for (const path of before.update)
		if (!castUpdate.has(path)) violations.push({ ...where, problem: `update path '${path}' was dropped` });
	for (const id of uncastIds(query.getFilter()))
		violations.push({ ...where, problem: `id not cast to an ObjectId: ${id}` });
}

/** Register the check on every schema compiled from now on (before the services' modules load). */
export function recordTranslations() {
	mongoose.plugin((schema: mongoose.Schema) => {
		schema.pre(OPERATIONS as any, function (this: any) {
			this.$translation = {
				filter: leafPaths(this.getFilter()),
				update: leafPaths(this.getUpdate() ?? undefined),
			};
		});
		schema.post(OPERATIONS as any, function (this: any) {
			check(this);
		});
	});
}

/** The violations found since the last call (and how many operations were checked), emptying the list. */
export function takeViolations(): { violations: Violation[]; operations: number } {
	const taken = { violations: violations.splice(0), operations };
	operations = 0;
	return taken;
}
