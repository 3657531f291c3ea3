//! `#[module(port = .., providers = [..], imports = [..], ...)]`: implements `Module`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{
    bracketed,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    spanned::Spanned,
    Expr, ExprLit, Ident, ItemStruct, Lit, LitBool, LitInt, LitStr, Path, Token, Type,
};

/// Parsed module arguments (each at most once).
#[derive(Default)]
struct ModuleArgs {
    /// `key = value` broker options: fields of `pigeon::config::Options`, so
    /// the compiler checks each name and type against the one declaration of
    /// the options (a misspelt key is "no field `prot` on `Options`", pointing
    /// at it).
    options: Vec<(Ident, TokenStream)>,
    providers: Vec<Path>,
    /// `providers = [PgStore as dyn UserStore]`: the trait object and its
    /// implementation (also in `providers`, so both share one singleton).
    bindings: Vec<(Path, Type)>,
    /// `values = [expr, ...]`: ready instances, each injected by its type.
    values: Vec<Expr>,
    /// `imports = [AuthModule, ...]`: modules whose providers join this one's.
    imports: Vec<Path>,
    /// `config_file = "pigeon.toml"`: read at bootstrap when it exists.
    config_file: Option<LitStr>,
    allow_sys_publish: Option<LitBool>,
    event_queue: Option<LitInt>,
}

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
            match key.as_str() {
                "providers" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Provider, Token![,]>::parse_terminated(&content)?;
                    for Provider { path, bound } in list {
                        if let Some(interface) = bound {
                            args.bindings.push((path.clone(), interface));
                        }
                        args.providers.push(path);
                    }
                }
                "values" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
                    args.values = list.into_iter().collect();
                }
                "imports" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
                    args.imports = parse_imports(list)?;
                }
                "config_file" => {
                    let file: LitStr = input.parse()?;
                    if file.value().is_empty() {
                        return Err(syn::Error::new(
                            file.span(),
                            "the config file's path cannot be empty",
                        ));
                    }
                    args.config_file = Some(file);
                }
                "persistence" => {
                    let store = parse_store(input)?;
                    args.options
                        .push((name, quote!(::std::string::String::from(#store))));
                }
                "emitter" => {
                    let emitter = parse_emitter(input)?;
                    args.options
                        .push((name, quote!(::std::string::String::from(#emitter))));
                }
                "allow_sys_publish" => args.allow_sys_publish = Some(input.parse()?),
                "event_queue" => {
                    let lit: LitInt = input.parse()?;
                    lit.base10_parse::<usize>()?;
                    args.event_queue = Some(lit);
                }
                "listen" => {
                    let urls = parse_urls(input)?;
                    let value = quote_spanned!(name.span()=> ::std::vec![#(::std::string::String::from(#urls)),*]);
                    args.options.push((name, value));
                }
                _ => {
                    let value: Expr = input.parse()?;
                    args.options.push((name, option_value(value)));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// One entry of `providers = [...]`: `PgStore`, or `PgStore as dyn UserStore`.
struct Provider {
    path: Path,
    bound: Option<Type>,
}

impl Parse for Provider {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path: Path = input.parse()?;
        let bound = if input.peek(Token![as]) {
            input.parse::<Token![as]>()?;
            let ty: Type = input.parse()?;
            if !matches!(ty, Type::TraitObject(_)) {
                return Err(syn::Error::new(
                    ty.span(),
                    "a provider is bound to a trait object: `providers = [Impl as dyn Trait]`",
                ));
            }
            Some(ty)
        } else {
            None
        };
        Ok(Self { path, bound })
    }
}

/// The imported modules, each once. Whether each is a module is the
/// compiler's to say (`Module` is not implemented), pointing at it.
fn parse_imports(list: Punctuated<Path, Token![,]>) -> syn::Result<Vec<Path>> {
    let mut imports: Vec<Path> = Vec::new();
    for path in list {
        let text = quote!(#path).to_string();
        if imports.iter().any(|p| quote!(#p).to_string() == text) {
            return Err(syn::Error::new(
                path.span(),
                format!("`{text}` is imported twice"),
            ));
        }
        imports.push(path);
    }
    Ok(imports)
}

/// The value of an `Options` field from what the user wrote: a string literal
/// converts (`String`, `PathBuf`); anything else is used as it is, so a wrong
/// type is reported at the value.
fn option_value(value: Expr) -> TokenStream {
    match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => quote_spanned!(s.span()=> ::pigeon::__private::StrOption::from_literal(#s)),
        _ => quote!(#value),
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

/// `persistence = memory`, `persistence = redb("PATH")` or
/// `persistence = redis("redis://HOST:PORT[/DB]")`: the store, as the
/// `persistence` option writes it (`memory`, `redb:PATH`, `redis://...`).
fn parse_store(input: ParseStream) -> syn::Result<LitStr> {
    let kind: Ident = input.parse()?;
    match kind.to_string().as_str() {
        "memory" => Ok(LitStr::new("memory", kind.span())),
        "redb" => {
            let content;
            syn::parenthesized!(content in input);
            let path: LitStr = content.parse()?;
            if path.value().is_empty() {
                return Err(syn::Error::new(path.span(), "the store's path cannot be empty"));
            }
            Ok(LitStr::new(&format!("redb:{}", path.value()), path.span()))
        }
        // A Redis server shared by the nodes of a cluster: the URL is
        // checked at startup, as the `persistence` option's value.
        "redis" => {
            if !input.peek(syn::token::Paren) {
                return Err(syn::Error::new(
                    kind.span(),
                    "the Redis store names its server: `persistence = redis(\"redis://HOST:PORT[/DB]\")`",
                ));
            }
            redis_url(input, "the Redis store's URL")
        }
        other => Err(syn::Error::new(
            kind.span(),
            format!("unknown persistence `{other}`; this build offers `persistence = memory`, `persistence = redb(\"PATH\")` and `persistence = redis(\"redis://HOST:PORT[/DB]\")`"),
        )),
    }
}

/// `("redis://...")` or `("rediss://...")` (TLS): the scheme is checked here,
/// pointing at the URL (`what` names it in the error); the runtime checks
/// the rest.
fn redis_url(input: ParseStream, what: &str) -> syn::Result<LitStr> {
    let content;
    syn::parenthesized!(content in input);
    let url: LitStr = content.parse()?;
    let value = url.value();
    if !(value.starts_with("redis://") || value.starts_with("rediss://")) {
        return Err(syn::Error::new(
            url.span(),
            format!("{what} is redis://HOST:PORT[/DB] (or rediss:// for TLS)"),
        ));
    }
    Ok(url)
}

/// `emitter = local` or `emitter = redis("redis://HOST:PORT[/DB]")`: as the
/// `emitter` option writes it (`local`, the URL; the runtime checks the rest).
fn parse_emitter(input: ParseStream) -> syn::Result<LitStr> {
    let kind: Ident = input.parse()?;
    match kind.to_string().as_str() {
        "local" => Ok(LitStr::new("local", kind.span())),
        "redis" => {
            redis_url(input, "a Redis emitter URL")
        }
        other => Err(syn::Error::new(
            kind.span(),
            format!("unknown emitter `{other}`; this build offers `emitter = local` and `emitter = redis(\"redis://HOST:PORT\")`"),
        )),
    }
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
    let options = args
        .options
        .iter()
        .map(|(k, v)| quote_spanned!(k.span()=> __options.#k = ::std::option::Option::Some(#v);));
    let providers = args
        .providers
        .iter()
        .map(|p| quote_spanned!(p.span()=> ::pigeon::__private::ProviderDef::of::<#p>()));
    let bindings = args.bindings.iter().map(|(p, interface)| {
        quote_spanned! {interface.span()=>
            ::pigeon::__private::ProviderDef::bind::<#interface, #p>(
                |__p: ::pigeon::__private::Arc<#p>| -> ::pigeon::__private::Arc<#interface> { __p },
            )
        }
    });
    let values = args.values.iter().map(|v| {
        quote_spanned!(v.span()=> ::pigeon::__private::ProviderDef::value(::pigeon::__private::Arc::new(#v)))
    });
    for import in &args.imports {
        if import.is_ident(ident) || import.is_ident("Self") {
            return Err(syn::Error::new(
                import.span(),
                "a module cannot import itself",
            ));
        }
    }
    let imports = args
        .imports
        .iter()
        .map(|p| quote_spanned!(p.span()=> ::pigeon::__private::Import::of::<#p>()));
    let config_file = match &args.config_file {
        Some(file) => quote!(::std::option::Option::Some(#file)),
        None => quote!(::std::option::Option::None),
    };
    let allow_sys = args.allow_sys_publish.map_or(quote!(false), |b| quote!(#b));
    let event_queue = args.event_queue.map_or(quote!(0), |n| quote!(#n));
    let name = ident.to_string();
    Ok(quote! {
        #item
        ::pigeon::__private::inventory::submit! {
            ::pigeon::__private::ModuleEntry {
                name: #name,
                providers: || {
                    <#ident as ::pigeon::__private::Module>::providers()
                        .iter()
                        .map(|d| d.type_id)
                        .collect()
                },
            }
        }
        impl ::pigeon::__private::Module for #ident {
            fn options() -> ::pigeon::__private::Options {
                #[allow(unused_mut)]
                let mut __options = ::pigeon::__private::Options::default();
                #(#options)*
                __options
            }
            fn providers() -> ::std::vec::Vec<::pigeon::__private::ProviderDef> {
                ::std::vec![#(#providers,)* #(#bindings),*]
            }
            fn values() -> ::std::vec::Vec<::pigeon::__private::ProviderDef> {
                ::std::vec![#(#values),*]
            }
            fn imports() -> ::std::vec::Vec<::pigeon::__private::Import> {
                ::std::vec![#(#imports),*]
            }
            fn config_file() -> ::std::option::Option<&'static str> {
                #config_file
            }
            fn hooks_options() -> ::pigeon::__private::HooksOptions {
                ::pigeon::__private::HooksOptions {
                    allow_sys_publish: #allow_sys,
                    event_queue: #event_queue,
                }
            }
        }
    })
}
