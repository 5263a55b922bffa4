// The runtime's floor: a Worker that answers a constant 200. What local workerd (and Miniflare's entry worker) spend
// per request with no work of ours; the benchmark reports the other Workers' CPU time above this.
export default {
  fetch() {
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  },
};
