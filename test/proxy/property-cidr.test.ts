// Property tests of CIDR ranges and peer addresses (trustedProxies.cidrs):
// ranges parse or throw a TypeError, addresses never throw, and membership
// agrees with Node's own net.BlockList.
import { BlockList } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createAddressMatcher, parseCidr, parseIpAddress } from "../../src/proxy/cidr.js";
import { hostileString, params, returnsOrThrows } from "../support/property.js";

const v4Bytes = fc.array(fc.nat({ max: 255 }), { minLength: 4, maxLength: 4 });
const v6Groups = fc.array(fc.nat({ max: 0xffff }), { minLength: 8, maxLength: 8 });

function maskBits(values: number[], width: number, prefix: number): number[] {
  return values.map((v, i) => {
    const keep = Math.max(0, Math.min(width, prefix - i * width));
    return keep === 0 ? 0 : v & (((1 << width) - 1) ^ ((1 << (width - keep)) - 1));
  });
}
const v4Text = (b: number[]) => b.join(".");
const v6Text = (g: number[]) => g.map((x) => x.toString(16)).join(":");

describe("parseCidr()", () => {
  it("returns a range or throws a TypeError for anything", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          hostileString,
          v4Bytes.map(v4Text),
          fc.tuple(v4Bytes, fc.nat({ max: 40 })).map(([b, p]) => `${v4Text(b)}/${p}`),
        ),
        (text) => {
          returnsOrThrows(() => parseCidr(text), TypeError);
        },
      ),
      params(),
    );
  });
});

describe("parseIpAddress()", () => {
  it("never throws", () => {
    fc.assert(
      fc.property(hostileString, (text) => {
        const bytes = parseIpAddress(text);
        expect(bytes === undefined || bytes.length === 16).toBe(true);
      }),
      params(),
    );
  });
});

describe("createAddressMatcher()", () => {
  it("agrees with net.BlockList on IPv4 ranges, also for IPv4-mapped IPv6 peers", () => {
    fc.assert(
      fc.property(v4Bytes, fc.integer({ min: 1, max: 32 }), v4Bytes, (net, prefix, peer) => {
        const network = v4Text(maskBits(net, 8, prefix));
        const matcher = createAddressMatcher([`${network}/${prefix}`]);
        const reference = new BlockList();
        reference.addSubnet(network, prefix, "ipv4");
        for (const address of [v4Text(peer), network]) {
          const expected = reference.check(address, "ipv4");
          expect(matcher(address)).toBe(expected);
          expect(matcher(`::ffff:${address}`)).toBe(expected);
        }
      }),
      params(),
    );
  });

  it("agrees with net.BlockList on IPv6 ranges", () => {
    fc.assert(
      fc.property(
        v6Groups,
        fc.integer({ min: 1, max: 128 }),
        v6Groups,
        fc.nat({ max: 7 }),
        (net, prefix, peer, same) => {
          const network = maskBits(net, 16, prefix);
          const matcher = createAddressMatcher([`${v6Text(network)}/${prefix}`]);
          const reference = new BlockList();
          reference.addSubnet(v6Text(network), prefix, "ipv6");
          // A peer sharing the first groups of the network, to land near the edge.
          const near = [...net.slice(0, same), ...peer.slice(same)];
          for (const address of [v6Text(peer), v6Text(near), v6Text(network)]) {
            expect(matcher(address)).toBe(reference.check(address, "ipv6"));
          }
        },
      ),
      params(),
    );
  });

  it("matches no garbage peer address", () => {
    const matcher = createAddressMatcher(["10.0.0.0/8", "::1/128", "fd00::/8"]);
    fc.assert(
      fc.property(hostileString, (text) => {
        if (parseIpAddress(text) === undefined) expect(matcher(text)).toBe(false);
      }),
      params(),
    );
  });
});
