// Side-effect CSS imports: Bun.build emits them as the bundle's stylesheet.
declare module "*.css";
