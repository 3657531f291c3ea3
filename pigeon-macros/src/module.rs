//! `#[module(port = .., providers = [..], ...)]`: implements `Module`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{
    bracketed,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    spanned::Spanned,
    Ident, ItemStruct, LitBool, LitInt, LitStr, Path, Token,
};

/// Parsed module arguments (each at most once).
#[derive(Default)]
struct ModuleArgs {
    /// `(field, value)` assignments to `Config`.
    config: Vec<(Ident, TokenStream)>,
    providers: Vec<Path>,
    allow_sys_publish: Option<LitBool>,
    event_queue: Option<LitInt>,
    listen: Vec<LitStr>,
}

const INT_OPTIONS: &[(&str, &str)] = &[
    ("port", "u16"),
    ("concurrency", "usize"),
    ("queue_limit", "usize"),
    ("max_clients_id_length", "usize"),
];
const MS_OPTIONS: &[&str] = &["connect_timeout", "heartbeat_interval"];
const STR_OPTIONS: &[&str] = &["id", "host"];
/// File options of TLS listeners: `Config` fields of type `Option<PathBuf>`.
const PATH_OPTIONS: &[&str] = &["cert", "key", "ca_file"];
/// The schemes a `listen` URL may have (the runtime parses the rest).
const SCHEMES: &[&str] = &["mqtt", "tcp", "mqtts", "tls", "ssl", "ws", "wss"];

impl Parse for ModuleArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = ModuleArgs::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let key = name.to_string();
            if seen.contains(&key) {
                return Err(syn::Error::new(name.span(), format!("duplicate `{key}`")));
            }
            seen.push(key.clone());
            if let Some((_, ty)) = INT_OPTIONS.iter().find(|(k, _)| *k == key) {
                let lit: LitInt = input.parse()?;
                match *ty {
                    "u16" => drop(lit.base10_parse::<u16>()?),
                    _ => drop(lit.base10_parse::<usize>()?),
                }
                args.config.push((name, quote!(#lit)));
            } else if MS_OPTIONS.contains(&key.as_str()) {
                let lit: LitInt = input.parse()?;
                let ms: u64 = lit.base10_parse()?;
                args.config.push((
                    name,
                    quote!(::pigeon::__private::Duration::from_millis(#ms)),
                ));
            } else if STR_OPTIONS.contains(&key.as_str()) {
                let lit: LitStr = input.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("`{key}` cannot be empty"),
                    ));
                }
                args.config
                    .push((name, quote!(::std::string::String::from(#lit))));
            } else if PATH_OPTIONS.contains(&key.as_str()) {
                let lit: LitStr = input.parse()?;
                args.config.push((
                    name,
                    quote!(::std::option::Option::Some(::std::path::PathBuf::from(#lit))),
                ));
            } else {
                match key.as_str() {
                    "listen" => args.listen = parse_urls(input)?,
                    "require_certificate" => {
                        let lit: LitBool = input.parse()?;
                        args.config.push((name, quote!(#lit)));
                    }
                    "providers" => {
                        let content;
                        bracketed!(content in input);
                        let list = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
                        args.providers = list.into_iter().collect();
                    }
                    "persistence" => only(input, "memory", "persistence")?,
                    "emitter" => only(input, "local", "emitter")?,
                    "allow_sys_publish" => args.allow_sys_publish = Some(input.parse()?),
                    "event_queue" => {
                        let lit: LitInt = input.parse()?;
                        lit.base10_parse::<usize>()?;
                        args.event_queue = Some(lit);
                    }
                    _ => {
                        return Err(syn::Error::new(
                            name.span(),
                            format!("unknown module option `{key}`; expected one of: port, host, id, concurrency, queue_limit, max_clients_id_length, connect_timeout, heartbeat_interval, listen, cert, key, ca_file, require_certificate, persistence, emitter, providers, allow_sys_publish, event_queue"),
                        ))
                    }
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// `listen = ["mqtt://0.0.0.0:1883", "ws://0.0.0.0:8080/mqtt"]`: the scheme is
/// checked here, pointing at the URL; the rest when the module boots.
fn parse_urls(input: ParseStream) -> syn::Result<Vec<LitStr>> {
    let content;
    bracketed!(content in input);
    let urls = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    for url in &urls {
        let value = url.value();
        let scheme = value.split_once("://").map(|(s, _)| s);
        if !scheme.is_some_and(|s| SCHEMES.contains(&s)) {
            return Err(syn::Error::new(
                url.span(),
                "a listener URL is mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH",
            ));
        }
    }
    Ok(urls.into_iter().collect())
}

/// `persistence = memory` / `emitter = local`: the only back-ends this build has.
fn only(input: ParseStream, expected: &str, what: &str) -> syn::Result<()> {
    let value: Ident = input.parse()?;
    if value != expected {
        return Err(syn::Error::new(
            value.span(),
            format!("unknown {what} `{value}`; this build offers `{what} = {expected}`"),
        ));
    }
    Ok(())
}

pub(crate) fn expand(attr: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let args: ModuleArgs = syn::parse2(attr)?;
    let item: ItemStruct = syn::parse2(input)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a #[module] struct cannot be generic",
        ));
    }
    let ident = &item.ident;
    let sets = args.config.iter().map(|(k, v)| quote!(__config.#k = #v;));
    let providers = args
        .providers
        .iter()
        .map(|p| quote_spanned!(p.span()=> ::pigeon::__private::ProviderDef::of::<#p>()));
    let allow_sys = args.allow_sys_publish.map_or(quote!(false), |b| quote!(#b));
    let event_queue = args.event_queue.map_or(quote!(0), |n| quote!(#n));
    let listen = &args.listen;
    Ok(quote! {
        #item
        impl ::pigeon::__private::Module for #ident {
            fn config() -> ::pigeon::__private::Config {
                #[allow(unused_mut)]
                let mut __config = ::pigeon::__private::Config::default();
                #(#sets)*
                __config
            }
            fn providers() -> ::std::vec::Vec<::pigeon::__private::ProviderDef> {
                ::std::vec![#(#providers),*]
            }
            fn hooks_options() -> ::pigeon::__private::HooksOptions {
                ::pigeon::__private::HooksOptions {
                    allow_sys_publish: #allow_sys,
                    event_queue: #event_queue,
                }
            }
            fn listen() -> &'static [&'static str] {
                &[#(#listen),*]
            }
        }
    })
}
