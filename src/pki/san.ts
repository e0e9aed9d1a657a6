// The subject alternative names of a certificate, read with Node's own X509Certificate, which every node
// uses on its hot path (each TLS connection's identity, each identity load): the X.509 library costs
// about 15 MB of RSS and a quarter of a second to load, so only signing and CSRs load it (x509.ts).
// Node prints the names as `TYPE:value` joined by ", ", a value with special characters JSON-quoted;
// quotes are honoured here, so no name can smuggle in another.
import { X509Certificate } from 'node:crypto';

export interface AltName {
  /** Node's label: `URI`, `DNS`, `IP Address`, `email`, ... */
  type: string;
  value: string;
}

export function subjectAltNames(cert: X509Certificate): AltName[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const entries: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      current += c;
      if (c === '\\') current += text[++i] ?? '';
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (c === ',' && text[i + 1] === ' ') {
      entries.push(current);
      current = '';
      i++;
    } else {
      current += c;
    }
  }
  entries.push(current);
  return entries.map((entry) => {
    const colon = entry.indexOf(':');
    const type = entry.slice(0, colon);
    const raw = entry.slice(colon + 1);
    if (!raw.startsWith('"')) return { type, value: raw };
    try {
      return { type, value: String(JSON.parse(raw)) };
    } catch {
      // Never matches a kv2 pattern: the entry is kept out of every decision.
      return { type: 'unreadable', value: raw };
    }
  });
}

/** A certificate from PEM text, DER bytes, or as it is. */
export function nodeCertificate(certificate: string | Buffer | X509Certificate): X509Certificate {
  return certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate);
}
