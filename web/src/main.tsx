// Entry of the console (/console/) and the portal (/portal/): one bundle, the path decides which.
import "./app.css";
import { render } from "preact";
import { App } from "./app.tsx";
import { takeTokenFromAddress } from "./session.ts";

takeTokenFromAddress();
const root = document.getElementById("app");
if (root) render(<App />, root);
