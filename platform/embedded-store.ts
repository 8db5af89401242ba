/**
 * The embedded store: moleculer-db's NeDB adapter (platform/db.mixin.ts uses it
 * without MONGO_URI), with the changes that keep its contract the MongoDB
 * adapter's (platform/store-adapters.ts) and its costs flat:
 *
 * - **Entities from a copy.** NeDB's adapter converts the object it is given in
 *   place (it deletes `_id` from the caller's object); here a copy is converted.
 * - **Cheap writes, exactly as durable.** NeDB appends each write (every document
 *   it changed, as one line each) to the collection's datafile with
 *   `fs.promises.appendFile`: open, write, close, three trips through the thread
 *   pool, while NeDB's executor holds every later operation of the collection
 *   until the append is done. Here the datafile stays open and each write's lines
 *   go out in one `write(2)` on that descriptor, made on the event loop, before
 *   the operation answers (see DatafileAppender). NeDB's promise API is called directly
 *   (moleculer-db's adapter wraps the callback API in `util.promisify`, which
 *   builds a deprecation warning on every call). New documents' ids come from a
 *   pool of random bytes rather than a call to the system per insert.
 * - **Costs that do not grow with the data.** NeDB keeps every document in
 *   memory, and each index as a tree of keys, each key with the list of documents
 *   under it. Taking a document out of a key's list filtered the whole list (a
 *   status index's "paid" holds nearly every order: one update of a paid order
 *   cost tens of milliseconds at 100,000 orders); here it is one lookup by
 *   reference. An update leaves alone every index whose key it does not change:
 *   a document no index moves is changed in place, and otherwise the new version
 *   takes the old one's place under each key that stays. A
 *   count counts instead of copying every match. A page sorted by an
 *   indexed field is read from that index in order, up to the page, instead of
 *   sorting every match for every page.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import Datastore from "@seald-io/nedb";
import Index from "@seald-io/nedb/lib/indexes.js";
import { compareThings, deepCopy, getDotValue, match } from "@seald-io/nedb/lib/model.js";
import DbService, { type CountOptions, type QueryFilters } from "moleculer-db";

/** The part of NeDB's persistence (lib/persistence.js, one per datastore) that writes the datafile. */
interface NedbPersistence {
	inMemoryOnly: boolean;
	filename: string;
	modes: { fileMode: number };
	afterSerialization(line: string): string;
	/** Append the new state of these documents (one line each); NeDB's executor awaits it inside the operation. */
	persistNewStateAsync(docs: object[]): Promise<void>;
	/** Rewrite the whole datafile (compaction: at every load, and on `compactDatafileAsync`). */
	persistCachedDatabaseAsync(): Promise<void>;
	/** Delete the datafile (`dropDatabaseAsync`). */
	dropDatabaseAsync(): Promise<void>;
}

/**
 * One collection's NeDB datafile, kept open for appending.
 *
 * Durability is exactly NeDB's own: a write's lines have reached the operating
 * system (`write(2)` returned; no fsync, as NeDB never syncs an append) before
 * the store operation answers, so a crash of the process (even SIGKILL) loses
 * nothing that was acknowledged, and a power loss can lose what the OS had not
 * flushed yet, as before. NeDB's executor runs a collection's operations, reads
 * included, one at a time and awaits the append inside each, so no operation
 * sees a change before it is on the OS, and the lines go out in order.
 *
 * The write is made on the event loop (`fs.writeSync`), not through the thread
 * pool: appending a few hundred bytes to the page cache costs about 4 µs of CPU
 * that way, against about 33 µs for the hand-off to a pool thread and back
 * (measured on these machines; 50,000 appends, the slowest 0.6 ms), and a
 * checkout makes about 14 of them. The price: should the file system hold a
 * write up (the kernel throttling a process with too much unwritten data), the
 * whole node waits, not only this collection.
 *
 * NeDB rewrites the datafile when it compacts it (it writes `<file>~` and
 * renames it over the datafile): the descriptor would then point at the old,
 * unlinked file, so it is closed before every rewrite (and before the file is
 * dropped) and the next append opens the new file. Both run inside NeDB's
 * executor, like every append, so no append can fall between them.
 */
export class DatafileAppender {
	private fd: number | null = null;
	private closed = false;

	constructor(
		private readonly filename: string,
		private readonly mode: number,
	) {}

	/** Append `text` to the datafile, all of it, before returning (throws what the file system answers). */
	append(text: string): void {
		const bytes = Buffer.from(text, "utf8");
		if (this.closed) {
			// An operation still queued when the store closed: written all the same, without keeping the file open.
			return fs.appendFileSync(this.filename, bytes, { mode: this.mode });
		}
		try {
			this.fd ??= fs.openSync(this.filename, "a", this.mode);
			for (let offset = 0; offset < bytes.length;) offset += fs.writeSync(this.fd, bytes, offset);
		} catch (err) {
			this.release(); // the next append starts from a freshly opened file
			throw err;
		}
	}

	/** Close the descriptor; the next append opens the datafile again (the new one after a rewrite). */
	release(): void {
		if (this.fd === null) return;
		const fd = this.fd;
		this.fd = null;
		fs.closeSync(fd);
	}

	/** Close for good (the store disconnects). */
	close(): void {
		this.release();
		this.closed = true;
	}
}

/**
 * `value` as NeDB's datafile holds it: each Date as `{ $$date: <ms> }`, all else as it is. Copies only
 * the objects and arrays on the way to a Date, so a document without dates is not copied at all.
 */
function storable(value: unknown): unknown {
	if (value === null || typeof value !== "object") return value;
	if (value instanceof Date) return { $$date: value.getTime() };
	if (Array.isArray(value)) {
		let copy: unknown[] | undefined;
		for (let i = 0; i < value.length; i++) {
			const stored = storable(value[i]);
			if (stored !== value[i]) (copy ??= value.slice())[i] = stored;
		}
		return copy ?? value;
	}
	let copy: Record<string, unknown> | undefined;
	for (const key in value) {
		const field = (value as Record<string, unknown>)[key];
		const stored = storable(field);
		if (stored !== field) (copy ??= { ...value })[key] = stored;
	}
	return copy ?? value;
}

/**
 * One document as one datafile line, the same line as NeDB's `serialize` writes, four times faster:
 * `serialize` runs a replacer function for every field (checking each key, which NeDB has already
 * checked when the document was inserted or modified). Tested against `serialize`.
 */
export const datafileLine = (doc: object): string => JSON.stringify(storable(doc));

/** Have the datastore's persistence append through one open `DatafileAppender` (see there), serialising as NeDB does. */
function appendThroughOpenFile(db: Datastore): DatafileAppender | null {
	const persistence = db.persistence as unknown as NedbPersistence;
	if (persistence.inMemoryOnly) return null;
	const file = new DatafileAppender(persistence.filename, persistence.modes.fileMode);
	persistence.persistNewStateAsync = async (docs: object[]) => {
		let lines = "";
		for (const doc of docs) lines += `${persistence.afterSerialization(datafileLine(doc))}\n`;
		if (lines) file.append(lines);
	};
	const rewrite = persistence.persistCachedDatabaseAsync.bind(persistence);
	persistence.persistCachedDatabaseAsync = () => {
		file.release();
		return rewrite();
	};
	const drop = persistence.dropDatabaseAsync.bind(persistence);
	persistence.dropDatabaseAsync = () => {
		file.release();
		return drop();
	};
	return file;
}

/** Random bytes for document ids, drawn from the system 4 KB at a time. */
const idEntropy = { pool: Buffer.alloc(4096), used: 4096 };
const ID_BYTES = 12;

/**
 * A new document id: 16 characters of URL-safe base64 from 12 random bytes (96 bits, where NeDB's own
 * ids have about 95), the same kind of opaque id as NeDB's. NeDB asks the system for fresh random
 * bytes for every document it inserts (`crypto.randomBytes`, about 25 µs each under load); here they
 * come from a pool.
 */
function newDocumentId(): string {
	if (idEntropy.used + ID_BYTES > idEntropy.pool.length) {
		crypto.randomFillSync(idEntropy.pool);
		idEntropy.used = 0;
	}
	const id = idEntropy.pool.toString("base64url", idEntropy.used, idEntropy.used + ID_BYTES);
	idEntropy.used += ID_BYTES;
	return id;
}

/** One node of a NeDB index's tree (an AVL tree): a key and the documents under it. */
interface IndexNode {
	key?: unknown;
	data: StoredDoc[];
	left?: IndexNode;
	right?: IndexNode;
}

/** What the adapter uses of one NeDB index. */
interface EmbeddedIndex {
	fieldName: string;
	sparse: boolean;
	tree: {
		tree: IndexNode;
		search(key: unknown): StoredDoc[];
		delete(key: unknown, doc?: StoredDoc): void;
		getNumberOfKeys(): number;
	};
	remove(doc: StoredDoc | StoredDoc[]): void;
	update(oldDoc: StoredDoc | DocChange[], newDoc?: StoredDoc): void;
}

/** One document's change, as NeDB hands an update of several documents to an index. */
interface DocChange {
	oldDoc: StoredDoc;
	newDoc: StoredDoc;
}

type StoredDoc = { _id: unknown } & object;

/** What the adapter uses of NeDB's datastore. */
interface EmbeddedDb {
	indexes: Record<string, EmbeddedIndex>;
	executor: { pushAsync<T>(task: () => Promise<T>): Promise<T> };
	ensureIndexAsync(options: { fieldName: string }): Promise<void>;
	countAsync(query: object): Promise<number>;
	/** The `_id` of a document inserted without one. */
	_createNewId(): string;
	/** Bring every index up to an update's changes (all of them or, on a refusal, none). */
	_updateIndexes(oldDoc: StoredDoc | DocChange[], newDoc?: StoredDoc): void;
}

/** An index key as NeDB tells apart the keys of one document's array (its `projectForUnique`). */
function keyIdentity(key: unknown): unknown {
	if (key === null) return "$null";
	if (typeof key === "string" || typeof key === "boolean" || typeof key === "number") return `$${typeof key}${key}`;
	return key instanceof Date ? `$date${key.getTime()}` : key;
}

/**
 * NeDB's `Index.remove`, with the same effect, but taking a document out of a key's list by reference
 * (`indexOf`, `splice`) instead of filtering the whole list into a new one: NeDB compares the documents
 * of a list by reference too, and a document is at most once in a key's list.
 */
function removeByReference(this: EmbeddedIndex, doc: StoredDoc | StoredDoc[]): void {
	if (Array.isArray(doc)) {
		for (const one of doc) this.remove(one);
		return;
	}
	const key = getDotValue(doc, this.fieldName);
	if (key === undefined && this.sparse) return;
	const keys = Array.isArray(key) ? [...new Map(key.map(k => [keyIdentity(k), k])).values()] : [key];
	for (const k of keys) {
		const docs = this.tree.search(k);
		const at = docs.length > 1 ? docs.lastIndexOf(doc) : -1; // the recent documents are at the end
		if (at >= 0) docs.splice(at, 1);
		else this.tree.delete(k, doc); // the key's last document, or none of it: NeDB's own path
	}
}

/** NeDB's own update of an index: for the documents whose key changes. */
const nedbUpdate = Index.prototype.update as (this: EmbeddedIndex, ...args: [object, object?]) => void;

/** The keys a document is under in an index: none, one, or each distinct element of an array. */
function keysOf(index: EmbeddedIndex, doc: StoredDoc): Map<unknown, unknown> {
	const value = getDotValue(doc, index.fieldName);
	if (value === undefined && index.sparse) return new Map();
	const values = Array.isArray(value) ? value : [value];
	return new Map(values.map(key => [keyIdentity(key), key]));
}

/**
 * The keys under which `change` can take effect by putting the new document in the old one's place:
 * the document is under the same keys before and after (none, in a sparse index, for a field it lacks).
 * Null when a key changes: then the document must move in the tree.
 */
function keptKeys(index: EmbeddedIndex, { oldDoc, newDoc }: DocChange): unknown[] | null {
	const before = keysOf(index, oldDoc);
	const after = keysOf(index, newDoc);
	if (before.size !== after.size) return null;
	if (before.size === 1) {
		const [[, old]] = before;
		const [[, now]] = after;
		return compareThings(old, now) === 0 && typeof old === typeof now ? [old] : null;
	}
	for (const identity of after.keys()) if (!before.has(identity)) return null;
	return [...before.values()];
}

/**
 * NeDB's `Index.update` (also its rollback, `revertUpdate`), with the same effect, but a document whose
 * keys the change leaves as they were — most indexes on most updates: an order's `userId` and `createdAt`
 * when its status changes, a product's search trigrams when its stock changes — takes its old version's
 * place in each key's list, instead of being taken out of the tree and put back (two walks down an AVL
 * tree per key, and rebalancing). The documents whose keys changed go first, through NeDB's own path,
 * which can still fail on a unique key and then leaves the index as it was.
 */
function updateInPlace(this: EmbeddedIndex, oldDoc: StoredDoc | DocChange[], newDoc?: StoredDoc): void {
	const changes = Array.isArray(oldDoc) ? oldDoc : [{ oldDoc, newDoc: newDoc! }];
	const kept: Array<DocChange & { keys: unknown[] }> = [];
	const moved: DocChange[] = [];
	for (const change of changes) {
		const keys = keptKeys(this, change);
		if (keys) kept.push({ ...change, keys });
		else moved.push(change);
	}
	if (moved.length === 1) nedbUpdate.call(this, moved[0].oldDoc, moved[0].newDoc);
	else if (moved.length > 1) nedbUpdate.call(this, moved);
	for (const { oldDoc: before, newDoc: after, keys } of kept) {
		const places = keys.map(key => {
			const docs = this.tree.search(key);
			return { docs, at: docs.lastIndexOf(before) }; // the recent documents are at the end
		});
		if (places.some(place => place.at < 0)) nedbUpdate.call(this, before, after);
		else for (const { docs, at } of places) docs[at] = after;
	}
}

/** NeDB's own update of a datastore's indexes (every index, rolled back on the first that refuses). */
const nedbUpdateIndexes = (Datastore.prototype as unknown as EmbeddedDb)._updateIndexes;

/** Give `doc` the fields of `next`, in place (fields `next` lacks go). */
function overwrite(doc: StoredDoc, next: StoredDoc): void {
	for (const field of Object.keys(doc)) if (!(field in next)) delete (doc as Record<string, unknown>)[field];
	Object.assign(doc, next);
}

/**
 * NeDB's `_updateIndexes` for an update (one or several documents), with the same effect, but a document
 * that every index keeps under its keys — a product whose stock changed, an order's timeline, most
 * updates — is changed in place: the stored object takes the new version's fields and every index keeps
 * pointing at it, with no walk down any tree. Putting a new object in the old one's place took a search
 * per key of every index and a scan of the key's list, which grew with the data: a product's search
 * trigrams at 20,000 products, each shared by thousands. The documents some index moves go first, through
 * NeDB's own update (and updateInPlace), which can still refuse on a unique key, and then nothing of the
 * update has happened. NeDB copies every document it answers with, so nobody else holds the stored object.
 */
function updateDocumentsInPlace(this: EmbeddedDb, oldDoc: StoredDoc | DocChange[], newDoc?: StoredDoc): void {
	if (!Array.isArray(oldDoc)) return nedbUpdateIndexes.call(this, oldDoc, newDoc);
	const indexes = Object.values(this.indexes);
	const inPlace = oldDoc.filter(change => indexes.every(index => keptKeys(index, change)));
	const moving = oldDoc.filter(change => !inPlace.includes(change));
	if (moving.length) nedbUpdateIndexes.call(this, moving);
	for (const change of inPlace) {
		overwrite(change.oldDoc, change.newDoc);
		change.newDoc = change.oldDoc; // what NeDB then appends to the datafile and copies for the caller
	}
}

/** The documents of an index in key order (descending: keys from the last), each key's documents by `_id`. */
function* inKeyOrder(root: IndexNode, descending: boolean): Generator<StoredDoc> {
	if (!Object.prototype.hasOwnProperty.call(root, "key")) return; // an empty tree
	const [first, second] = descending ? (["right", "left"] as const) : (["left", "right"] as const);
	const path: IndexNode[] = [];
	for (let node: IndexNode | undefined = root; node || path.length;) {
		for (; node; node = node[first]) path.push(node);
		node = path.pop()!;
		yield* node.data.length > 1 ? [...node.data].sort((a, b) => compareThings(a._id, b._id)) : node.data;
		node = node[second];
	}
}

/**
 * The fields of `query` NeDB would take its candidates from an index for (its `_getRawCandidates`:
 * a plain value, `$in`, or bounds).
 */
function indexedFields(query: Record<string, unknown>, indexes: Record<string, EmbeddedIndex>): string[] {
	return Object.entries(query)
		.filter(([field, value]) => {
			if (!indexes[field]) return false;
			if (value === null || typeof value !== "object" || value instanceof Date) return true;
			return ["$in", "$lt", "$lte", "$gt", "$gte"].some(op => Object.prototype.hasOwnProperty.call(value, op));
		})
		.map(([field]) => field);
}

/**
 * Have every index of the datastore, those made later too, take a document out of a key by reference,
 * and updates change in place the documents they leave under the same keys.
 */
function takeOutByReference(db: EmbeddedDb): void {
	db._updateIndexes = updateDocumentsInPlace;
	const ensureIndex = db.ensureIndexAsync.bind(db);
	const tune = () =>
		Object.values(db.indexes).forEach(index => {
			index.remove = removeByReference;
			index.update = updateInPlace;
		});
	db.ensureIndexAsync = async options => {
		await ensureIndex(options);
		tune();
	};
	tune();
}

/** Have the datastore give new documents ids from `newDocumentId` (still checked against the ids it holds). */
function drawIdsFromPool(db: EmbeddedDb): void {
	db._createNewId = () => {
		let id = newDocumentId();
		while (db.indexes._id.tree.search(id).length > 0) id = newDocumentId();
		return id;
	};
}

/**
 * moleculer-db's NeDB adapter, converting a copy of the stored object (never the caller's own), writing
 * through an open datafile, calling NeDB's promise API directly, with index updates, counts and sorted
 * pages whose cost does not grow with the collection (see the top of this file).
 */
export class EmbeddedStoreAdapter extends DbService.MemoryAdapter {
	/** NeDB's datastore, once connected. */
	declare db: Datastore | undefined;
	private datafile: DatafileAppender | null = null;

	constructor(private readonly options?: { filename: string }) {
		super(options);
	}

	async connect(): Promise<void> {
		const db = new Datastore(this.options);
		this.datafile = appendThroughOpenFile(db);
		takeOutByReference(db as unknown as EmbeddedDb);
		drawIdsFromPool(db as unknown as EmbeddedDb);
		this.db = db;
		await db.loadDatabaseAsync();
	}

	async disconnect(): Promise<void> {
		this.datafile?.close();
		this.db = undefined;
	}

	/** NeDB's own parts the adapter uses (its indexes and executor). */
	private get internals(): EmbeddedDb {
		return this.store() as unknown as EmbeddedDb;
	}

	private store(): Datastore {
		if (!this.db) throw new Error("The embedded store is not connected");
		return this.db;
	}

	// moleculer-db's typings of these differ from what its adapter answers (null when nothing is found, counts).
	findOne(query: object): Promise<object> {
		return this.store().findOneAsync(query) as Promise<object>;
	}

	findById(_id: unknown): Promise<object> {
		return this.store().findOneAsync({ _id }) as Promise<object>;
	}

	insert(entity: object): Promise<object> {
		return this.store().insertAsync(entity);
	}

	insertMany(entities: object[]): Promise<object[]> {
		return this.store().insertAsync(entities);
	}

	async updateMany(query: object, update: object): Promise<number> {
		return (await this.store().updateAsync(query, update, { multi: true })).numAffected;
	}

	async updateById(_id: unknown, update: object): Promise<object> {
		const { affectedDocuments } = await this.store().updateAsync({ _id }, update, { returnUpdatedDocs: true });
		return affectedDocuments as object;
	}

	removeMany(query: object): Promise<number> {
		return this.store().removeAsync(query, { multi: true });
	}

	removeById(_id: unknown): Promise<object> {
		return this.store().removeAsync({ _id }, {}) as unknown as Promise<object>;
	}

	clear(): Promise<void> {
		return this.store().removeAsync({}, { multi: true }) as unknown as Promise<void>;
	}

	async entityToObject(entity: unknown): Promise<object> {
		return { ...(entity as object) };
	}

	/**
	 * How many documents match, counted where they are (moleculer-db's adapter copies every match to count
	 * it); all of them: the keys of the `_id` index, without reading a document.
	 */
	count(filters: CountOptions = {}): Promise<number> {
		if (filters.search) return super.count(filters);
		const query = filters.query ?? {};
		if (Object.keys(query).length === 0)
			return this.internals.executor.pushAsync(async () => this.internals.indexes._id.tree.getNumberOfKeys());
		return this.store().countAsync(query);
	}

	/**
	 * moleculer-db's find; a page sorted by one indexed field (the query taking its candidates from no
	 * other index) is read from that index in order: the documents up to the end of the page, not every match.
	 * The order is NeDB's sort's, ties by `_id`.
	 */
	find(filters: QueryFilters): Promise<object[]> {
		// moleculer-db passes its sort as a list of fields (its typings say one string).
		const sort = filters.sort === undefined ? undefined : ([] as string[]).concat(filters.sort);
		const limit = Number(filters.limit);
		const field = sort?.length === 1 ? sort[0].replace(/^-/, "") : undefined;
		const index = field ? this.internals.indexes[field] : undefined;
		const query = (filters.query ?? {}) as Record<string, unknown>;
		if (!index || index.sparse || filters.search || !(limit > 0) || field!.includes("."))
			return super.find(filters);
		if (indexedFields(query, this.internals.indexes).some(other => other !== field)) return super.find(filters);
		const offset = Number(filters.offset) || 0;
		return this.internals.executor.pushAsync(async () => {
			const page: object[] = [];
			let skipped = 0;
			for (const doc of inKeyOrder(index.tree.tree, sort![0].startsWith("-"))) {
				if (!match(doc, query)) continue;
				if (skipped++ < offset) continue;
				page.push(deepCopy(doc));
				if (page.length === limit) break;
			}
			return page;
		});
	}
}
