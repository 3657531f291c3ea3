//! The arguments of `#[on_*(...)]`: an optional topic pattern, `order = N`
//! and, for `#[on_request]`, `timeout = MS` and `concurrency = N`.

use syn::{
    parse::{Parse, ParseStream},
    Ident, LitInt, LitStr, Token,
};

/// Parsed `#[on_publish("a/:id", order = 2)]`.
#[derive(Default)]
pub(crate) struct HookArgs {
    pub pattern: Option<LitStr>,
    pub order: Option<i32>,
    /// `timeout = MS` (on_request only), with the name's span for errors.
    pub timeout: Option<(u64, Ident)>,
    /// `concurrency = N` (on_request only).
    pub concurrency: Option<(usize, Ident)>,
}

impl Parse for HookArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = HookArgs::default();
        while !input.is_empty() {
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                set_pattern(&mut args, lit)?;
            } else {
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                match name.to_string().as_str() {
                    "order" => {
                        let negative = input.parse::<Option<Token![-]>>()?.is_some();
                        let lit: LitInt = input.parse()?;
                        let value: i32 = lit.base10_parse()?;
                        if args.order.is_some() {
                            return Err(syn::Error::new(name.span(), "duplicate `order`"));
                        }
                        args.order = Some(if negative { -value } else { value });
                    }
                    "timeout" | "concurrency" => {
                        let lit: LitInt = input.parse()?;
                        let value: u64 = lit.base10_parse()?;
                        if value == 0 {
                            return Err(syn::Error::new(lit.span(), format!("`{name}` must be above 0")));
                        }
                        let taken = if name == "timeout" {
                            args.timeout.replace((value, name.clone())).is_some()
                        } else {
                            let n = usize::try_from(value)
                                .map_err(|_| syn::Error::new(lit.span(), "too large"))?;
                            args.concurrency.replace((n, name.clone())).is_some()
                        };
                        if taken {
                            return Err(syn::Error::new(name.span(), format!("duplicate `{name}`")));
                        }
                    }
                    "topic" => {
                        let lit: LitStr = input.parse()?;
                        set_pattern(&mut args, lit)?;
                    }
                    other => {
                        return Err(syn::Error::new(
                            name.span(),
                            format!("unknown argument `{other}`; expected `order = N`, `topic = \"...\"`, a topic pattern string, or (on_request) `timeout = MS`, `concurrency = N`"),
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

fn set_pattern(args: &mut HookArgs, lit: LitStr) -> syn::Result<()> {
    if args.pattern.is_some() {
        return Err(syn::Error::new(lit.span(), "duplicate topic pattern"));
    }
    validate_pattern(&lit.value()).map_err(|m| syn::Error::new(lit.span(), m))?;
    args.pattern = Some(lit);
    Ok(())
}

/// Same rules as `pigeon::hooks::TopicPattern::parse`, checked at compile time.
fn validate_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty topic pattern".into());
    }
    let parts: Vec<&str> = p.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        match *part {
            "#" if i + 1 == parts.len() => {}
            "#" => return Err("`#` must be the last segment of a topic pattern".into()),
            "+" => {}
            s if s.starts_with(':') => {
                let name = &s[1..];
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(format!(
                        "invalid segment name `{s}`: use `:name` with letters, digits and `_`"
                    ));
                }
            }
            s if s.contains(['#', '+']) => {
                return Err(format!("`{s}`: wildcards must fill a whole segment"))
            }
            _ => {}
        }
    }
    Ok(())
}
