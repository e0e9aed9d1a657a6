// @yao-pkg/pkg ships no types for its SEA entry point; build.ts narrows what it uses.
declare module '@yao-pkg/pkg/lib-es5/sea.js';
