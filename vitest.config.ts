import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    // Runs in its own project next to Connect 2.2.0: .ci/adapters.sh.
    exclude: [...configDefaults.exclude, "test/adapters/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
