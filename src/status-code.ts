/**
 * Code holds the status codes a refusal carries, without loading a
 * framework: their numbers are gRPC's, which Connect's `Code` enum shares
 * (`Code.PermissionDenied` is 7, `Code.Unauthenticated` 16), so each adapter
 * sends them as they are.
 */
export const Code = {
  PermissionDenied: 7,
  Unauthenticated: 16,
} as const;

/** Code is the status code of a refusal: 7 (permission denied) or 16 (unauthenticated). */
export type Code = (typeof Code)[keyof typeof Code];
