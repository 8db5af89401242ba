// The "mongodb" project: a test fails when a filter or an update it caused lost a path or an id cast (mongo-translation.ts).
import { takeViolations } from "./mongo-translation";

afterEach(() => {
	expect(takeViolations().violations).toEqual([]);
});
