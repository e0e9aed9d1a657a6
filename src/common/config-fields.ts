// Config fields several modules' configs share, as zod schemas: a port, an address with its port, and a
// node name. Each module's config schema lives with its code (judicator/config.ts, etcd/config.ts, ...).
import { z } from 'zod';

/** A TCP port; numeric text is accepted too (a hand edit that quoted it). */
export const portField = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/).transform(Number)]);

/** A node's name: it ends up in etcd keys and URLs, so it is kept simple. */
export const nodeNameField = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only');

/** An address and a port: where a module listens, or where others reach it. */
export const hostPortField = z.object({ address: z.string().min(1), port: portField });

/** A node's name (its certificate's) and addresses: where its module listens, and where others reach it. */
export const nodeAddressFields = { name: nodeNameField, listen: hostPortField, advertise: hostPortField };
