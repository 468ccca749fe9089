import { expect } from "bun:test";
import { MictlanxError } from "../../src/lib/errors.ts";

/** The typed error a promise rejects with; fails the test if it resolves or throws something else. */
export async function rejection(promise: Promise<unknown>): Promise<MictlanxError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(MictlanxError);
    return error as MictlanxError;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

/** The typed error `fn` throws; fails the test if it returns or throws something else. */
export function thrown(fn: () => unknown): MictlanxError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MictlanxError);
    return error as MictlanxError;
  }
  throw new Error("expected a throw");
}
