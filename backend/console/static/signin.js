// Signing in, the way the server chose (config.json's sign_in), and where the ID token comes
// from afterwards (api.js asks the token source before every call):
//
// - "personas" (development, auth-emulator mode only): a picker of the demo people; the
//   server makes a one-hour development token, kept in this tab's sessionStorage.
// - "firebase": Firebase Authentication with the official Firebase JS SDK, loaded from our
//   own origin (the bundle `carecompanion console build` makes). Its persistence is
//   browserSessionPersistence: the sign-in survives a reload of this tab and ends with the
//   tab; never localStorage (kept after the browser closes, shared by every tab) and not
//   only memory (every reload would sign the nurse out). The SDK keeps the ID token and the
//   refresh token there; getIdToken returns the ID token, refreshed first when it has less
//   than 30 seconds left (the SDK's own rule), so the API never sees an expired one.
// - "unconfigured": the page says which setting is missing.
//
// More ways to sign in (an OIDC or SAML provider through Firebase) are one more entry in the
// server's PROVIDERS and one more form in FORMS below (README, "The console").
import { SignedOut, endSession, get, post, session, useTokenSource } from "./api.js";
import { h, labelled } from "./dom.js";

const DEV_TOKEN = "care-console.token";

const devTokens = {
  signedIn: () => window.sessionStorage.getItem(DEV_TOKEN) !== null,
  token: async () => window.sessionStorage.getItem(DEV_TOKEN),
  end: async () => window.sessionStorage.removeItem(DEV_TOKEN),
};

let firebase = null; // { sdk, auth } once the bundle is loaded and any earlier sign-in restored

function firebaseTokens(sdk, auth) {
  return {
    signedIn: () => auth.currentUser !== null,
    async token() {
      try {
        return await sdk.getIdToken(auth.currentUser);
      } catch (err) {
        if (err.code === "auth/network-request-failed") {
          throw new Error("The sign-in service could not be reached to renew your sign-in; try again.");
        }
        throw new SignedOut(err.message); // refresh refused: revoked, disabled, deleted
      }
    },
    end: () => sdk.signOut(auth),
  };
}

/** Prepare the server's way of signing in; resolves once an earlier sign-in in this tab is
 * restored. Throws if the Firebase bundle cannot be loaded. */
export async function startSignIn(config) {
  useTokenSource(devTokens);
  if (config?.sign_in !== "firebase" || !config.bundle) return;
  const sdk = await import(config.bundle);
  const app = sdk.initializeApp(config.firebase);
  // initializeAuth with only session persistence and no popup/redirect resolver: no iframe
  // from the auth domain, no IndexedDB, nothing in localStorage.
  const auth = sdk.initializeAuth(app, { persistence: sdk.browserSessionPersistence });
  if (config.emulator) sdk.connectAuthEmulator(auth, config.emulator, { disableWarnings: true });
  await auth.authStateReady();
  firebase = { sdk, auth };
  useTokenSource(firebaseTokens(sdk, auth));
}

// What Firebase's error codes mean to the person at the keyboard. With email-enumeration
// protection (on by default) a wrong password and an unknown email are both
// auth/invalid-credential: the page must not tell which.
const FIREBASE_ERRORS = {
  "auth/invalid-credential": "The email or password is not right. Check both and try again.",
  "auth/wrong-password": "The email or password is not right. Check both and try again.",
  "auth/user-not-found": "The email or password is not right. Check both and try again.",
  "auth/invalid-email": "That is not an email address.",
  "auth/missing-password": "Enter your password.",
  "auth/user-disabled": "This account is turned off. Ask your administrator.",
  "auth/too-many-requests": "Too many tries. Wait a few minutes, then try again.",
  "auth/network-request-failed": "The sign-in service could not be reached. Check the connection and try again.",
};

function explain(err) {
  if (err && FIREBASE_ERRORS[err.code]) return FIREBASE_ERRORS[err.code];
  if (err && err.status) return err.message; // the API refused the new sign-in
  return `Sign-in failed (${(err && err.code) || "unknown error"}). Try again, or ask your administrator.`;
}

/** After a sign-in: who the API says this is; refused, the sign-in is undone. */
async function welcome() {
  try {
    const me = await get("/me");
    session.setName(me.display_name || me.preferred_name || me.email || "");
  } catch (err) {
    await endSession();
    throw err;
  }
}

function form(label, fields, submit) {
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit" }, "Sign in");
  // method=post: were the script to fail mid-submit, a password would go in a body, never a URL.
  return h(
    "form",
    {
      class: "stack narrow",
      method: "post",
      "aria-label": label,
      onSubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        button.disabled = true;
        try {
          await submit();
        } catch (err) {
          error.textContent = explain(err);
        } finally {
          button.disabled = false;
        }
      },
    },
    fields,
    button,
    error,
  );
}

function personaForm(config, signedIn) {
  const persona = h(
    "select",
    { name: "persona", required: true },
    config.personas.map((p) => h("option", { value: p.persona, selected: p.persona === "priya" }, `${p.name} (${p.persona})`)),
  );
  return form(
    "Development sign-in",
    [
      h("p", { class: "notice" }, `Development sign-in (${config.environment}): pick a demo person. This picker does not exist in production.`),
      h("div", { class: "field" }, labelled("Sign in as", persona)),
    ],
    async () => {
      const { token } = await post("/console/dev/token", { persona: persona.value });
      window.sessionStorage.setItem(DEV_TOKEN, token);
      await welcome();
      signedIn();
    },
  );
}

function passwordForm(config, signedIn) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const element = form(
    "Sign in with email and password",
    [h("div", { class: "field" }, labelled("Email", email)), h("div", { class: "field" }, labelled("Password", password))],
    async () => {
      try {
        await firebase.sdk.signInWithEmailAndPassword(firebase.auth, email.value.trim(), password.value);
      } finally {
        password.value = "";
      }
      await welcome();
      signedIn();
    },
  );
  return element;
}

const FORMS = { password: passwordForm };

function notice(text) {
  return h("p", { class: "notice", role: "alert" }, text);
}

/** The sign-in page for this server's way of signing in; `signedIn` goes on from there. */
export function signInPage(config, loadError, signedIn) {
  if (config && config.sign_in === "personas") return [personaForm(config, signedIn)];
  if (!config || config.sign_in !== "firebase") {
    return [
      notice(
        "Sign-in is not configured on this server. The console signs care-team members in with Firebase Authentication: " +
          `an administrator sets ${(config && config.missing) || "FIREBASE_WEB_API_KEY"} (see the README's settings) and restarts it.`,
      ),
    ];
  }
  if (!config.bundle) {
    return [
      notice(
        `The sign-in page is not built on this server. An administrator runs “${config.build_command}” ` +
          "(it needs Node.js and npm) where the app is installed, then reloads this page.",
      ),
    ];
  }
  if (loadError || !firebase) {
    return [notice("The sign-in page could not load its sign-in library. Reload the page; if this stays, tell your administrator.")];
  }
  const forms = config.providers.filter((p) => FORMS[p.id]).map((p) => FORMS[p.id](config, signedIn));
  return forms.length ? forms : [notice("None of this server's ways of signing in is known to this page.")];
}
